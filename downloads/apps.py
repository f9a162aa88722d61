from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "downloads"

    def ready(self):
        from downloads import worker  # noqa: F401 - connects the worker's crash recovery to django-q2
