from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "apps.experiments"
    label = "experiments"

    def ready(self):
        from apps.experiments.receivers import (
            on_calls_settled,
            on_hold_requested,
            on_job_finished,
            on_review_tasks_done,
            on_task_labels_done,
        )
        from apps.llm.signals import experiment_hold_requested, llm_calls_settled
        from apps.reviews.signals import review_tasks_done
        from apps.training.signals import generation_job_finished, training_job_finished

        experiment_hold_requested.connect(on_hold_requested, dispatch_uid="experiments.hold_requested")
        llm_calls_settled.connect(on_calls_settled, dispatch_uid="experiments.calls_settled")
        training_job_finished.connect(on_job_finished, dispatch_uid="experiments.training_finished")
        generation_job_finished.connect(on_job_finished, dispatch_uid="experiments.generation_finished")
        review_tasks_done.connect(on_review_tasks_done, dispatch_uid="experiments.review_tasks_done")
        review_tasks_done.connect(on_task_labels_done, dispatch_uid="experiments.task_labels_done")
