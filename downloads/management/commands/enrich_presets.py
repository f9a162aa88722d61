from django.core.management.base import BaseCommand, CommandError

from downloads.links import enrich
from presets.models import Preset, PresetFile


class Command(BaseCommand):
    help = (
        "Ask the source of each preset file lacking an exact size or sha256 for them (a HEAD request,"
        " 8 at a time) and store what it gives."
    )

    def add_arguments(self, parser):
        parser.add_argument("preset_ids", nargs="*", metavar="ID", help="only these presets (default: all)")

    def handle(self, *args, preset_ids=(), **options):
        files = PresetFile.objects.all()
        if preset_ids:
            unknown = sorted(
                set(preset_ids) - set(Preset.objects.filter(pk__in=preset_ids).values_list("pk", flat=True))
            )
            if unknown:
                raise CommandError(f"no such preset: {', '.join(unknown)}")
            files = files.filter(preset_id__in=preset_ids)
        report = enrich(files)
        self.stdout.write(report.summary())
        for line in report.lines():
            self.stdout.write(line)
