from django.apps import AppConfig


class DiskConfig(AppConfig):
    """What is on the model disk: the storage page, uninstall, verify results, clean-up, audit."""

    name = "disk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from disk import receivers
        from disk.admin import add_uninstall_action
        from downloads.signals import verify_finished

        add_uninstall_action()  # the admin (an app listed earlier) has loaded every admin module
        verify_finished.connect(receivers.record_verify)
