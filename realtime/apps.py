from django.apps import AppConfig

from presets.signals import catalogue_refreshed


class RealtimeConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "realtime"

    def ready(self):
        from realtime.events import publish_catalogue_refreshed

        catalogue_refreshed.connect(publish_catalogue_refreshed)
