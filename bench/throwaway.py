"""What the Django benchmarks share: a throw-away setup (a temp data dir and SQLite database,
migrated) and the timing of a call."""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(prefix):
    """Point the settings at a fresh temp dir, set Django up, migrate; return the dir."""
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        DATA_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="presetsite.settings",
        LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return workdir


def timed(call, runs):
    """Run `call` `runs` times: (the seconds each took, what the last one returned)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result
