from django.core.management.base import BaseCommand

from templates_scan import library


class Command(BaseCommand):
    help = "Scan COMFYUI_TEMPLATE_DIRS (only new or changed files) and print each workflow's status."

    def handle(self, *args, **options):
        counts = library.scan_directories()
        self.stdout.write(
            f"{counts['files']} workflow files: {counts['parsed']} parsed, {counts['errors']} unreadable, "
            f"{counts['removed']} removed"
        )
        for report in library.all_reports():
            if report["error"]:
                status = f"unreadable: {report['error']}"
            elif report["compatible"]:
                status = "compatible"
            else:
                status = f"{report['missing_count']} missing"
            self.stdout.write(f"  {report['name']}: {status}")
