from django.core.management.base import BaseCommand, CommandError

from presets.catalogue import CatalogueError
from presets.refresh import RefreshError, refresh_from_file, refresh_from_url


class Command(BaseCommand):
    help = "Refresh the preset catalogue from the configured URL, another URL, or a local presets.yaml."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--url", help="fetch presets.yaml from this URL instead of PRESETS_REFRESH_URL")
        source.add_argument("--file", help="load this local presets.yaml")

    def handle(self, *args, url=None, file=None, **options):
        try:
            result = refresh_from_file(file) if file else refresh_from_url(url)
        except CatalogueError as exc:
            raise CommandError("invalid catalogue, nothing changed:\n  " + "\n  ".join(exc.errors)) from None
        except RefreshError as exc:
            raise CommandError(f"refresh failed, nothing changed: {exc}") from None
        self.stdout.write(result.summary())
        for label in ("added", "changed", "removed", "retired", "kept_local"):
            ids = getattr(result, label)
            if ids:
                self.stdout.write(f"  {label}: {', '.join(ids)}")
