from django.core.management.base import BaseCommand, CommandError

from disk.uninstall import Refused, uninstall
from presets.models import Preset
from presets.sizes import human_size


class Command(BaseCommand):
    help = "Delete a preset's model files that no other installed preset needs (shared files are kept)."

    def add_arguments(self, parser):
        parser.add_argument("preset_id")

    def handle(self, *args, preset_id, **options):
        preset = Preset.objects.filter(pk=preset_id).first()
        if preset is None:
            raise CommandError(f"no preset {preset_id!r}; see GET /api/presets/ for the ids")
        try:
            answer = uninstall(preset)
        except Refused as refusal:
            raise CommandError(str(refusal)) from None
        for path in answer["deleted"]:
            self.stdout.write(f"deleted {path}")
        for path in answer["kept_shared"]:
            self.stdout.write(f"kept {path} (another installed preset or a queued job uses it)")
        for refused in answer["refused"]:
            self.stderr.write(f"left {refused['path']}: {refused['reason']}")
        self.stdout.write(f"{preset_id}: {human_size(answer['freed_bytes'])} freed")
