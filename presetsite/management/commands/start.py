"""One command that brings the whole app up on a fresh machine.

It migrates, collects static files, loads the catalogue on first start, makes sure an admin
exists, then runs the web server (daphne) and the download worker (django-q2's qcluster) side
by side, stopping both when either stops or on Ctrl-C.
"""

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from presets.refresh import load_initial_catalogue


class Command(BaseCommand):
    help = "Set up the database and catalogue, then run the web server and the download worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, host, port, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        result = load_initial_catalogue()
        if result:
            self.stdout.write(f"Catalogue loaded: {result.summary()}")
        self.ensure_admin()
        self.stdout.write(f"Models are installed under {settings.MODEL_BASE_PATH}")
        self.stdout.write(f"Open http://{host}:{port}/ (admin at /admin/)")
        self.run_processes(
            [
                [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "presetsite.asgi:application"],
                [sys.executable, "manage.py", "qcluster"],
            ]
        )

    def ensure_admin(self):
        """Create the first admin once, with ADMIN_PASSWORD or a random password printed once."""
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username, "", password)
        if "ADMIN_PASSWORD" in os.environ:
            self.stdout.write(f"Created admin user '{username}' with the password from ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Created admin user '{username}' with password: {password}\n"
                "  (shown this once; change it in the admin)"
            )

    def run_processes(self, commands):
        """Run each command in its own process group; on Ctrl-C or SIGTERM, send each group the
        SIGINT a terminal would (the download worker stops within a second and requeues its job)."""
        children = [subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True) for command in commands]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        failed = [child.args for child in children if child.returncode not in (0, -signal.SIGINT, -signal.SIGTERM)]
        if failed and not stopping:
            sys.exit(f"stopped because a process exited: {failed[0]}")
