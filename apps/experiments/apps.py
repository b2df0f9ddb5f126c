from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "apps.experiments"
    label = "experiments"

    def ready(self):
        from apps.experiments.receivers import on_hold_requested
        from apps.llm.signals import experiment_hold_requested

        experiment_hold_requested.connect(on_hold_requested, dispatch_uid="experiments.hold_requested")
