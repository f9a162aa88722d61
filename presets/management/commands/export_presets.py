from pathlib import Path

from django.core.management.base import BaseCommand

from presets.refresh import export_catalogue_text


class Command(BaseCommand):
    help = "Write the catalogue as presets.yaml in the upstream format (to stdout, or --output FILE)."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="file to write instead of stdout")

    def handle(self, *args, output=None, **options):
        text = export_catalogue_text()
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
