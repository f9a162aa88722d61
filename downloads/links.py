"""Curation from the source: enrich files with the exact size and sha256 their source declares,
and check that every file's link still works (link health).

Both ask each file's URL with the prober (downloads/probe.py), 8 at a time, and record what it
answered on the file (`link_status`, `link_checked_at`, `link_message`), so enriching a preset
also tells whether its links work.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from downloads.probe import Probe, probe_many
from downloads.worker import engine_options
from presets.models import PresetFile

log = logging.getLogger(__name__)

WORKERS = 8
# One probe's deadline when checking links: a dead host costs at most this, 8 at a time.
DEADLINE = 10.0
# Files a scheduled check asks about in one task: at most BATCH / WORKERS * DEADLINE seconds
# (30 s) even if every host hangs, usually a second or two.
BATCH = 24


@dataclass
class Report:
    """What an enrich run found, file by file ("preset: path — what")."""

    filled: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # the source answered but did not tell
    failed: list[str] = field(default_factory=list)

    def summary(self):
        return f"{len(self.filled)} filled, {len(self.unknown)} the source could not tell, {len(self.failed)} failed"

    def lines(self):
        for label, items in (("filled", self.filled), ("could not tell", self.unknown), ("failed", self.failed)):
            for item in items:
                yield f"  {label}: {item}"


def needing_enrichment(files):
    """The files (a PresetFile queryset) whose exact size or sha256 is still unknown."""
    return files.filter(Q(exact_bytes__isnull=True) | Q(sha256=""))


def enrich(files):
    """Ask the source of each file lacking an exact size or sha256 for them and store what it
    gives. Only those two fields change, and only where empty (`learn_from_source`): a locally
    curated preset stays curated, and what its curator typed is never replaced."""
    report = Report()
    files = list(needing_enrichment(files).select_related("preset").order_by("preset_id", "position", "id"))
    for file, found in zip(files, _probe(files), strict=True):
        _record(file, found)
        name = f"{file.preset_id}: {file.path}"
        if not found.ok:
            report.failed.append(f"{name} — {found.message}")
            continue
        before = (file.exact_bytes, file.sha256)
        file.learn_from_source(found.size, found.sha256)
        learned = []
        if file.exact_bytes != before[0]:
            learned.append(f"{file.exact_bytes:,} bytes")
        if file.sha256 != before[1]:
            learned.append("sha256")
        if learned:
            report.filled.append(f"{name} — {' and '.join(learned)}")
        else:
            report.unknown.append(f"{name} — {found.message}")
    log.info("enriched %s file(s): %s", len(files), report.summary())
    return report


def check_links(since=None):
    """The scheduled link check: one batch of the files not checked since `since` (the start of
    this round; None starts one), least recently checked first, then a task for the next batch.

    Why batches: the single django-q2 worker also runs the downloads, and a check of hundreds of
    URLs, some of them hanging, would hold a queued download up for minutes. A batch is bounded
    (BATCH), and the next one is queued behind whatever was queued meanwhile, so a download asked
    for during a check starts within one batch. Returns how many files are left for this round.
    """
    from django_q.tasks import async_task

    started = datetime.fromisoformat(since) if since else timezone.now()
    left = check_batch(started, BATCH)
    if left:
        async_task("downloads.links.check_links", started.isoformat())
    return left


def check_batch(started, size=BATCH):
    """Check up to `size` files not checked since `started`; return how many are left."""
    pending = PresetFile.objects.filter(Q(link_checked_at__isnull=True) | Q(link_checked_at__lt=started))
    files = list(pending.order_by("link_checked_at", "id")[:size])
    for file, found in zip(files, _probe(files), strict=True):
        _record(file, found)
    return pending.count()


def check_files(files):
    """Check these files' links now (the admin's action on selected presets)."""
    files = list(files)
    probes = _probe(files)
    for file, found in zip(files, probes, strict=True):
        _record(file, found)
    return probes


def _probe(files) -> list[Probe]:
    """A probe for each file, each URL asked once (upstream's 183 files have 83 URLs)."""
    urls = list(dict.fromkeys(file.url for file in files))
    found = dict(zip(urls, probe_many(urls, options=engine_options(), workers=WORKERS, deadline=DEADLINE), strict=True))
    return [found[file.url] for file in files]


def _record(file, found: Probe):
    file.link_status, file.link_message, file.link_checked_at = found.status, found.message[:500], timezone.now()
    PresetFile.objects.filter(pk=file.pk).update(
        link_status=file.link_status, link_message=file.link_message, link_checked_at=file.link_checked_at
    )
