from django.core.management.base import BaseCommand

from downloads.queue import queue_snapshot
from presets.sizes import human_size


class Command(BaseCommand):
    help = "Print the download queue: the current download, then the waiting jobs in order."

    def handle(self, *args, **options):
        snapshot = queue_snapshot()
        current = snapshot["current"]
        if current:
            self.stdout.write(
                f"now: {current['preset_id']} {current['status']} {current['progress']}% "
                f"({human_size(current['downloaded'])} / {human_size(current['total'])}) {current['file'] or ''}"
            )
        else:
            self.stdout.write("now: nothing is downloading")
        for position, job in enumerate(snapshot["queue"], start=1):
            self.stdout.write(f"{position:>3}. {job['preset_id']} {job['status']}")
        if not snapshot["queue"]:
            self.stdout.write("the queue is empty")
