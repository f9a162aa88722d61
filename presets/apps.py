from django.apps import AppConfig


class PresetsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "presets"

    def ready(self):
        from presets import checks  # noqa: F401 - registers the system checks
