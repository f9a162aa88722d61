from django.apps import AppConfig
from django.db.models.signals import post_migrate

from presets.signals import presets_deleting, presets_in_use


class DownloadsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "downloads"

    def ready(self):
        from downloads import (
            receivers,
            worker,  # noqa: F401 - connects the worker's crash recovery to django-q2
        )
        from downloads.admin import hide_django_q_pages
        from downloads.queue import queue_snapshot
        from realtime.sockets import provide_snapshot

        presets_in_use.connect(receivers.presets_with_active_jobs)
        presets_deleting.connect(receivers.delete_partials_of_deleted_presets)
        hide_django_q_pages()  # the admin (an app listed earlier) has loaded every admin module
        provide_snapshot(queue_snapshot)  # what a dashboard socket gets first
        post_migrate.connect(schedule_link_check, sender=self)


def schedule_link_check(**kwargs):
    """The daily link check (downloads.links.check_links), created once: on every migrate this
    finds it again by name and leaves its timing alone."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="Check model links",
        defaults={"func": "downloads.links.check_links", "schedule_type": Schedule.DAILY, "repeats": -1},
    )
