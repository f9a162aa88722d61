from django.core.management.base import BaseCommand, CommandError

from downloads import queue
from presets.models import Preset, disk_sizes, preset_is_installed, preset_rows


class Command(BaseCommand):
    help = (
        "Queue verify jobs (re-hash the files on disk against their sha256) for the given presets, "
        "or for every installed one; the worker runs them in the download queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("preset_ids", nargs="*", metavar="ID")

    def handle(self, *args, preset_ids, **options):
        presets = list(Preset.objects.filter(pk__in=preset_ids)) if preset_ids else installed_presets()
        unknown = set(preset_ids) - {p.pk for p in presets}
        if unknown:
            raise CommandError(f"no preset {', '.join(sorted(unknown))}; see GET /api/presets/ for the ids")
        refused = 0
        for preset in presets:
            try:
                job, created = queue.verify(preset)
            except queue.QueueError as error:
                self.stderr.write(f"{preset.pk}: not queued: {error}")
                refused += 1
                continue
            checkable = job.files.filter(skipped=False).count()
            said = "Queued" if created else "Already in the queue:"
            self.stdout.write(
                f"{said} verify of {preset.pk} (job {job.pk}, {checkable} of {job.files.count()} checkable)"
            )
        if not presets:
            self.stdout.write("no preset is installed; nothing to verify")
        if refused:
            raise CommandError(f"{refused} preset(s) not queued")


def installed_presets():
    rows = preset_rows(Preset.objects.all())
    sizes = disk_sizes(f["path"] for row in rows for f in row["files"])
    ids = [row["id"] for row in rows if preset_is_installed(row["files"], sizes)]
    return list(Preset.objects.filter(pk__in=ids))
