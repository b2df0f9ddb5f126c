from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "apps.llm"
    label = "llm"

    def ready(self):
        from apps.llm.receivers import on_review_tasks_done
        from apps.reviews.signals import review_tasks_done

        review_tasks_done.connect(on_review_tasks_done, dispatch_uid="llm.review_tasks_done")
