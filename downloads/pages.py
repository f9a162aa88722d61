"""The pages end users browse and install from (the admin is for curators): the models page,
and a preset's page with its files on disk and its install history."""

from pathlib import PurePosixPath

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from downloads.models import Kind, State
from downloads.queue import STATE_WORDS
from downloads.views import part_size
from presets.models import Preset, disk_sizes, file_is_installed, preset_is_installed
from presets.sizes import human_size


@login_required
def models_page(request):
    """Cards and queue are filled in by the page itself from the JSON API and the live socket."""
    return render(request, "downloads/models.html")


@login_required
def preset_page(request, preset_id):
    """One preset for its users: each file (where it goes, how big, on disk or not) and who
    installed it when, with how each attempt ended."""
    preset = get_object_or_404(Preset, pk=preset_id)
    files = list(preset.files.all())
    sizes = disk_sizes(f.path for f in files)
    rows = [{"path": f.path, "exact_bytes": f.exact_bytes, "optional": f.optional} for f in files]
    context = {
        "preset": preset,
        "installed": preset_is_installed(rows, sizes),
        "corrupt": bool(sizes.corrupt),
        "on_disk": bool(sizes),
        "files": [
            file_on_disk(f, file_is_installed(row, sizes), f.path in sizes.corrupt)
            for f, row in zip(files, rows, strict=False)
        ],
        "jobs": [
            {"job": job, "outcome": outcome(job)}
            for job in preset.download_jobs.select_related("requested_by").order_by("-created_at", "-id")
        ],
    }
    return render(request, "downloads/preset_detail.html", context)


def outcome(job):
    if job.kind == Kind.VERIFY:
        return "verified" if job.state == State.COMPLETED else f"verify {STATE_WORDS[job.state]}"
    return STATE_WORDS[job.state]


def file_on_disk(file, installed, corrupt):
    path = PurePosixPath(file.path)
    partial = 0 if installed else part_size(file.path)
    return {
        "folder": str(path.parent),
        "name": path.name,
        "size": human_size(file.exact_bytes) if file.exact_bytes is not None else file.size,
        "optional": file.optional,
        "installed": installed,
        "corrupt": corrupt,
        "partial": human_size(partial) if partial else "",
    }
