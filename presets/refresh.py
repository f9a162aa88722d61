"""Refreshing the catalogue from presets.yaml (a URL or a local file) into the database.

A refresh is all or nothing: the text is validated first, then applied in one transaction,
and only then written to PRESETS_FILE (the previous copy kept as PRESETS_FILE.bak). It is
careful with what users depend on: locally curated presets are never overwritten, presets
dropped upstream are retired instead of deleted while installed or queued, and running
downloads keep the file list their job copied when it started.
"""

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from presets.catalogue import dump_catalogue, parse_catalogue, unsafe_url_reason
from presets.models import (
    CatalogueSource,
    Category,
    Preset,
    PresetFile,
    catalogue_entry,
    delete_presets,
    disk_sizes,
    preset_is_installed,
    preset_rows,
)
from presets.signals import catalogue_refreshed, presets_in_use

USER_AGENT = "presetsite-catalogue/1.0"


class RefreshError(Exception):
    """The refresh could not run (network, HTTP status, size); nothing was changed."""


@dataclass
class RefreshResult:
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    retired: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    kept_local: list = field(default_factory=list)
    not_modified: bool = False
    version: str = ""

    def as_dict(self):
        return asdict(self)

    def summary(self):
        if self.not_modified:
            return f"catalogue not modified (version {self.version or '?'})"
        return (
            f"version {self.version or '?'}: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.retired)} retired, {len(self.unchanged)} unchanged, "
            f"{len(self.kept_local)} kept as curated locally"
        )


def refresh_from_url(url=None):
    """Fetch presets.yaml (conditionally, with the stored ETag) and apply it."""
    url = url or settings.PRESETS_REFRESH_URL
    problem = unsafe_url_reason(url)
    if problem:
        raise RefreshError(f"refresh URL {problem}: {url!r}")
    source = CatalogueSource.current()
    headers = {"User-Agent": USER_AGENT}
    if source.etag and source.url == url and Path(settings.PRESETS_FILE).exists():
        headers["If-None-Match"] = source.etag
    try:
        with requests.get(url, headers=headers, timeout=settings.PRESETS_REFRESH_TIMEOUT, stream=True) as response:
            if response.status_code == 304:
                source.checked_at = timezone.now()
                source.save(update_fields=["checked_at"])
                return RefreshResult(not_modified=True, version=source.version)
            if response.status_code != 200:
                raise RefreshError(f"{url} answered HTTP {response.status_code}")
            body = _read_limited(response, settings.PRESETS_MAX_BYTES)
            etag = response.headers.get("ETag", "")
    except requests.RequestException as exc:
        raise RefreshError(f"could not fetch {url}: {exc.__class__.__name__}") from None
    return load_catalogue_text(body, url=url, etag=etag)


def refresh_from_file(path):
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > settings.PRESETS_MAX_BYTES:
            raise RefreshError(f"{path} is {size} bytes, more than the limit of {settings.PRESETS_MAX_BYTES}")
        body = path.read_bytes()
    except OSError as exc:
        raise RefreshError(f"could not read {path}: {exc.strerror}") from None
    return load_catalogue_text(body, url="", etag="")


def load_catalogue_text(body, url, etag):
    """Validate, apply in one transaction, then keep the text (and a backup of the previous)."""
    catalogue = parse_catalogue(body, model_root=settings.MODEL_BASE_PATH)
    with transaction.atomic():
        result = apply_catalogue(catalogue)
        source = CatalogueSource.current()
        now = timezone.now()
        source.url = url
        source.etag = etag
        source.version = str(catalogue["metadata"].get("version", ""))
        source.metadata = catalogue["metadata"]
        source.refreshed_at = now
        source.checked_at = now
        source.save()
    _keep_copy(body if isinstance(body, bytes) else body.encode())
    result.version = source.version
    catalogue_refreshed.send(sender=CatalogueSource, result=result)
    return result


def apply_catalogue(catalogue):
    """Bring the database in line with a validated catalogue dict; return the diff."""
    result = RefreshResult()
    existing = {row["id"]: row for row in preset_rows(Preset.objects.all())}
    positions = dict(Preset.objects.values_list("id", "position"))

    for position, (name, data) in enumerate(catalogue["categories"].items()):
        Category.objects.update_or_create(
            name=name, defaults={"description": data["description"], "type": data["type"], "position": position}
        )

    now = timezone.now()
    to_create, to_update, to_move = [], [], []
    entries = dict(catalogue["presets"])
    for position, (preset_id, data) in enumerate(catalogue["presets"].items()):
        row = existing.pop(preset_id, None)
        if row is not None:
            data = entries[preset_id] = with_learned(data, row)
        preset = Preset(id=preset_id, source=Preset.UPSTREAM, created_at=now, updated_at=now)
        preset.apply_catalogue_entry(data, position)
        if row is None:
            to_create.append(preset)
            result.added.append(preset_id)
        elif row["source"] == Preset.LOCAL:
            result.kept_local.append(preset_id)
        elif catalogue_entry(row) != data or row["retired_at"]:
            to_update.append(preset)
            result.changed.append(preset_id)
        else:
            if positions[preset_id] != position:
                to_move.append(preset)
            result.unchanged.append(preset_id)

    # One UPDATE each: Django's bulk_update builds CASE expressions that cost far more here.
    Preset.objects.bulk_create(to_create)
    for preset in to_update:
        preset.save(update_fields=[*Preset.CATALOGUE_FIELDS, "retired_at", "updated_at"])
    for preset in to_move:
        preset.save(update_fields=["position"])
    PresetFile.objects.filter(preset_id__in=result.changed).delete()
    PresetFile.objects.bulk_create(
        [
            PresetFile.from_catalogue_entry(preset_id, position, file)
            for preset_id in result.added + result.changed
            for position, file in enumerate(entries[preset_id]["files"])
        ]
    )

    _drop_removed([row for row in existing.values() if row["source"] == Preset.UPSTREAM], result, now)
    Category.objects.exclude(name__in=catalogue["categories"]).filter(presets__isnull=True).delete()
    return result


def with_learned(entry, row):
    """The upstream entry, with the exact size and sha256 that downloads learned from the source
    (PresetFile.learn_from_source) where upstream gives none, for each file whose path and URL
    are unchanged: such a value is no change, and a refreshed file keeps it."""
    learned = {(f["path"], f["url"]): f for f in row["files"]}
    files = []
    for file in entry["files"]:
        known = learned.get((file["path"], file["url"]))
        file = dict(file)
        if known and "sha256" not in file and known["sha256"]:
            file["sha256"] = known["sha256"]
        if known and "size_bytes" not in file and known["exact_bytes"] is not None:
            file["size_bytes"] = known["exact_bytes"]
        files.append(file)
    return {**entry, "files": files}


def _drop_removed(rows, result, now):
    """Delete presets upstream no longer lists (and, through presets_deleting, their .part files),
    unless someone has them installed or an app above still needs them (presets_in_use)."""
    if not rows:
        return
    dropped = Preset.objects.filter(pk__in=[row["id"] for row in rows])
    in_use = {pk for _, ids in presets_in_use.send(sender=Preset, presets=dropped) for pk in ids}
    sizes = disk_sizes(f["path"] for row in rows for f in row["files"])
    keep = {row["id"] for row in rows if row["id"] in in_use or preset_is_installed(row["files"], sizes)}
    result.retired = [row["id"] for row in rows if row["id"] in keep and not row["retired_at"]]
    result.removed = [row["id"] for row in rows if row["id"] not in keep]
    Preset.objects.filter(pk__in=result.retired).update(retired_at=now)
    delete_presets(Preset.objects.filter(pk__in=result.removed))


def catalogue_from_db():
    """The live catalogue as a catalogue dict, for export (retired presets are left out)."""
    return {
        "metadata": CatalogueSource.current().metadata,
        "categories": {c.name: {"description": c.description, "type": c.type} for c in Category.objects.all()},
        "presets": {
            row["id"]: catalogue_entry(row) for row in preset_rows(Preset.objects.filter(retired_at__isnull=True))
        },
    }


def export_catalogue_text():
    return dump_catalogue(catalogue_from_db())


def load_initial_catalogue():
    """On first start, load the last refreshed copy, else the catalogue shipped in config/."""
    if Preset.objects.exists():
        return None
    for path in (settings.PRESETS_FILE, settings.PRESETS_DEFAULT_FILE):
        if Path(path).exists():
            return refresh_from_file(path)
    return None


def _read_limited(response, limit):
    chunks, total = [], 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise RefreshError(f"catalogue is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _keep_copy(body):
    """Write the catalogue atomically, moving the previous copy to .bak when it differs."""
    target = Path(settings.PRESETS_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        previous = target.read_bytes()
        if previous == body:
            return
        _write_atomically(target.with_name(target.name + ".bak"), previous)
    _write_atomically(target, body)


def _write_atomically(target, body):
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
