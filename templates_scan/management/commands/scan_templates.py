"""Scan the template folders once and print each workflow's status, or keep rescanning them.

`--every SECONDS` is the scheduled rescan: `start` runs it as a process of its own beside the
web server and the download worker. Not in the worker's queue, where it would wait behind an
hours-long download (there is one worker, and it runs one task at a time); not in a request,
which only reads; not in a thread of the web server, whose event loop should not parse large
workflow files. A round costs a walk of the folders and a stat per file; only new or changed
files are parsed.
"""

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from templates_scan import library

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Scan COMFYUI_TEMPLATE_DIRS (only new or changed files) and print each workflow's status."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, metavar="SECONDS", help="rescan this often until stopped")

    def handle(self, *args, every, **options):
        if every is None:
            self.scan_once()
        elif every <= 0:
            raise CommandError("--every needs a number of seconds above 0")
        else:
            try:
                self.keep_scanning(every)
            except KeyboardInterrupt:  # how `start` stops its processes
                pass

    def scan_once(self):
        self.stdout.write(library.scan_summary(library.scan_directories()))
        for report in library.all_reports():
            if report["error"]:
                status = f"unreadable: {report['error']}"
            elif report["compatible"]:
                status = "compatible"
            else:
                status = f"{report['missing_count']} missing"
            self.stdout.write(f"  {report['name']}: {status}")

    def keep_scanning(self, every):
        """Rescan every `every` seconds, saying only what changed. A database that fails one round
        (locked, restarting) is tried again the next: the app should not stop over a rescan."""
        while True:
            close_old_connections()
            try:
                counts = library.scan_directories()
            except DatabaseError:
                log.exception("rescanning the template folders failed; trying again in %g s", every)
            else:
                if counts["parsed"] or counts["removed"]:
                    log.info("template folders rescanned: %s", library.scan_summary(counts))
            time.sleep(every)
