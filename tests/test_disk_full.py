"""A full disk, for real: the model root on a 2 MiB tmpfs mounted for the test."""

import subprocess

import pytest

from downloads import queue
from downloads.models import DownloadJob, State
from downloads.worker import run_queue
from tests.test_queue import alpha_under_way, served_preset, target

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_disk(settings, tmp_path):
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    settings.MODEL_BASE_PATH = mountpoint
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_a_preset_that_cannot_fit_is_refused_before_it_is_queued(server, small_disk):
    preset = served_preset(server, "HUGE", [4_000_000])
    with pytest.raises(queue.NoRoom, match="^HUGE does not fit on the model disk: it needs 3.8 MB, "):
        queue.install(preset)
    assert not DownloadJob.objects.exists()


def test_a_file_larger_than_the_catalogue_said_fails_before_it_starts(server, small_disk, settings):
    preset = served_preset(server, "HUGE", [4_000_000], with_hashes=False)  # about 1MB, says the catalogue
    job, _ = queue.install(preset)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.FAILED and "not enough disk space" in job.error
    assert not target(settings, preset).exists()


def test_a_disk_that_fills_up_mid_download_fails_clearly_keeps_the_part_and_retry_finishes(
    server, small_disk, settings
):
    preset, job, worker, part = alpha_under_way(server, settings, 1_200_000, at_least=200_000, every=0.02)
    filler = small_disk / "someone-elses-file"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # until ENOSPC
    worker.join(timeout=30)
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert "disk full while writing" in job.error and "alpha_0.safetensors.part" in job.error
    assert not target(settings, preset).exists()
    kept = part.stat().st_size
    assert kept > 200_000

    filler.unlink()
    server.always("/ALPHA/0.safetensors", None)
    queue.retry(job)
    run_queue()
    job.refresh_from_db()
    assert job.state == State.COMPLETED
    assert server.requests_for("/ALPHA/0.safetensors")[-1].range == f"bytes={kept}-"
    assert target(settings, preset).stat().st_size == 1_200_000
