from django.apps import AppConfig


class DiskConfig(AppConfig):
    """What is on the model disk: the storage page, uninstall, verify results, clean-up, audit."""

    name = "disk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from disk import receivers
        from downloads.signals import verify_finished

        verify_finished.connect(receivers.record_verify)
