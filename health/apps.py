from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Content health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the content checks' Celery tasks with every worker)
