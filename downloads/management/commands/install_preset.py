import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from downloads import queue
from downloads.models import DownloadJob, State
from presets.models import Preset
from presets.sizes import human_size


class Command(BaseCommand):
    help = "Queue a preset for download; --wait follows it until it ends (a worker must be running)."

    def add_arguments(self, parser):
        parser.add_argument("preset_id")
        parser.add_argument("--force", action="store_true", help="download files that are already present again")
        parser.add_argument("--wait", action="store_true", help="follow the download; exit 1 if it fails")

    def handle(self, *args, preset_id, force, wait, **options):
        preset = Preset.objects.filter(pk=preset_id).first()
        if preset is None:
            raise CommandError(f"no preset {preset_id!r}; see GET /api/presets/ for the ids")
        try:
            job, created = queue.install(preset, force=force)
        except queue.QueueError as error:
            raise CommandError(str(error)) from None
        if job is None:
            self.stdout.write(f"{preset_id} is already installed; nothing to download (--force downloads it again)")
            return
        self.stdout.write(f"{'Queued' if created else 'Already in the queue:'} {preset_id} (job {job.pk})")
        if wait:
            self.follow(job)

    def follow(self, job):
        waiting_since = time.monotonic()
        warned = False
        while True:
            job.refresh_from_db()
            if job.state in State.FINISHED:
                break
            running = DownloadJob.objects.running().exists()
            waited = time.monotonic() - waiting_since
            if (
                job.state == State.QUEUED
                and not running
                and not warned
                and waited > settings.INSTALL_WAIT_WARNING_AFTER
            ):
                self.stderr.write(
                    "\nNo worker has picked the job up: is one running? "
                    "Start it with `python manage.py qcluster` or bin/start."
                )
                warned = True
            self.show(job)
            time.sleep(0.5)
        self.show(job)
        self.stdout.write("")
        if job.state == State.COMPLETED:
            self.stdout.write(self.style.SUCCESS(f"{job.preset_id} installed ({human_size(job.bytes_done)})"))
        else:
            self.stderr.write(f"{job.preset_id} {job.state}: {job.error or 'no error recorded'}")
            sys.exit(1)

    def show(self, job):
        total = job.bytes_total or 0
        fraction = min(1.0, job.bytes_done / total) if total else (1.0 if job.state == State.COMPLETED else 0.0)
        bar = "#" * int(fraction * 30)
        speed = f"{human_size(job.speed)}/s" if job.speed else ""
        done = f"{human_size(job.bytes_done)} / {human_size(total)}"
        line = f"\r[{bar:<30}] {fraction * 100:5.1f}% {done} {speed} {job.state}"
        self.stdout.write(f"{line:<100}", ending="")
        self.stdout.flush()
