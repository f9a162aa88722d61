"""One command that brings the whole app up on a fresh machine.

It migrates, collects static files, loads the catalogue on first start, makes sure an admin
exists, then runs the web server (daphne), the download worker (django-q2's qcluster) and the
template folders' rescan side by side, stopping all when one stops or on Ctrl-C.
"""

import ctypes
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from downloads.models import WorkerLease
from presets.refresh import load_initial_catalogue
from presetsite.env import env_int, env_str

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Command(BaseCommand):
    help = "Set up the database and catalogue, then run the web server and the download worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=env_str("HOST") or "127.0.0.1")
        parser.add_argument("--port", type=int, default=env_int("PORT", 8000))

    def handle(self, *args, host, port, **options):
        refuse_a_taken_port(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        holder = WorkerLease.holder()
        if holder:
            raise CommandError(holder.describe())
        call_command("collectstatic", interactive=False, verbosity=0)
        result = load_initial_catalogue()
        if result:
            self.stdout.write(f"Catalogue loaded: {result.summary()}")
        self.ensure_admin()
        self.stdout.write(f"Models are installed under {settings.MODEL_BASE_PATH}")
        self.stdout.write(f"Open http://{host}:{port}/ (admin at /admin/)")
        self.run_processes(
            {
                # The web server keeps nothing to save: it gets a few seconds, not the worker's 30,
                # should an open socket hold up its stop (seen now and then under load).
                (
                    sys.executable,
                    "-m",
                    "presetsite.serve",
                    "-b",
                    host,
                    "-p",
                    str(port),
                    "presetsite.asgi:application",
                ): 5,
                # The worker requeues its download within a second; 30 s is the last resort.
                (sys.executable, "manage.py", "qcluster"): 30,
                # The template folders' scheduled rescan, out of the worker's queue (see scan_templates).
                (sys.executable, "manage.py", "scan_templates", "--every", str(settings.TEMPLATE_RESCAN_INTERVAL)): 5,
            }
        )

    def ensure_admin(self):
        """Create the first admin once, with ADMIN_PASSWORD or a random password printed once."""
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = env_str("ADMIN_USERNAME") or "admin"
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
        SIGINT a terminal would (the download worker stops within a second and requeues its job).
        `commands` maps each command to the seconds it gets to stop before it is killed.

        Our handlers are set before the children start: a handler is reset to the default in a
        child, whereas an ignored SIGINT (`bin/start &` from a script, nohup) would be inherited
        and leave daphne deaf to the stop. Each child also dies with this process, so a
        `kill -9` of `start` leaves nothing running headless.
        """
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        children = {
            subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True, preexec_fn=die_with_parent): grace
            for command, grace in commands.items()
        }
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGINT)
        for child, grace in children.items():
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        failed = [child.args for child in children if child.returncode not in (0, -signal.SIGINT, -signal.SIGTERM)]
        if failed and not stopping:
            sys.exit(f"stopped because a process exited: {failed[0]}")


def die_with_parent():
    """In the child, before it runs: the kernel sends it SIGTERM when `start` dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def refuse_a_taken_port(host, port):
    """Say plainly that the port is taken, and by what, instead of starting half the app."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as daphne binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise CommandError(
                f"port {port} on {host} is already in use{by_whom(port)}; stop it or use --port"
            ) from None


def by_whom(port):
    """' by pid N (command line)' for the process listening on `port`, when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: listening
                inodes.add(f"socket:[{fields[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                return f" by pid {fd_dir.parent.name} ({command})"
        except OSError:
            continue
    return ""
