"""The preset catalogue: categories, presets and the model files each preset brings."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction

from presets.catalogue import MAX_LENGTHS, preset_id_reason, unsafe_url_reason
from presets.signals import presets_deleting
from presets.sizes import MAX_BYTES, parse_size
from storage import ModelRoots, canonical_folder, unsafe_path_reason


def validate_size(value):
    try:
        parse_size(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def validate_preset_id(value):
    problem = preset_id_reason(value)
    if problem:
        raise ValidationError(f"The id {problem}.")


def validate_model_path(value):
    problem = unsafe_path_reason(value, settings.MODEL_BASE_PATH)
    if problem:
        raise ValidationError(f"Path {problem}.")


def validate_download_url(value):
    problem = unsafe_url_reason(value)
    if problem:
        raise ValidationError(f"URL {problem}.")


class Category(models.Model):
    name = models.CharField(max_length=MAX_LENGTHS["category"], primary_key=True)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=30)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class Preset(models.Model):
    UPSTREAM = "upstream"
    LOCAL = "local"
    SOURCES = [(UPSTREAM, "Upstream catalogue"), (LOCAL, "Curated locally")]

    id = models.CharField(max_length=100, primary_key=True, validators=[validate_preset_id])
    name = models.CharField(max_length=MAX_LENGTHS["name"])
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="presets")
    type = models.CharField(max_length=30)
    description = models.TextField(blank=True)
    use_case = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    download_size = models.CharField(
        max_length=MAX_LENGTHS["download_size"],
        blank=True,
        validators=[validate_size],
        help_text='As written upstream, e.g. "14.5GB"',
    )
    approx_download_bytes = models.BigIntegerField(null=True, blank=True, editable=False)
    source = models.CharField(
        max_length=10,
        choices=SOURCES,
        default=LOCAL,
        help_text="Locally curated presets are never overwritten by a refresh.",
    )
    retired_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the upstream catalogue dropped this preset while it was installed or queued.",
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.name} ({self.id})"

    def save(self, *args, **kwargs):
        self.approx_download_bytes = parse_size(self.download_size)
        super().save(*args, **kwargs)

    CATALOGUE_FIELDS = (
        "name", "category", "type", "description", "use_case", "download_size", "tags",
        "approx_download_bytes", "position",
    )  # fmt: skip

    def apply_catalogue_entry(self, entry, position):
        """Take a validated presets.yaml entry's fields (its files are rows of their own)."""
        for field in ("name", "type", "description", "use_case", "download_size", "tags"):
            setattr(self, field, entry[field])
        self.category_id = entry["category"]
        self.approx_download_bytes = parse_size(self.download_size)
        self.position = position

    @property
    def retired(self):
        return self.retired_at is not None

    def is_installed(self, sizes=None):
        files = [{"path": f.path, "exact_bytes": f.exact_bytes, "optional": f.optional} for f in self.files.all()]
        return preset_is_installed(files, sizes if sizes is not None else disk_sizes(f["path"] for f in files))


def delete_presets(presets):
    """Delete presets (a queryset) with all that hangs off them. The apps above hear of it first
    (presets_deleting), in one transaction with the delete, so that what they clean up once it
    commits is no longer held by what was deleted. Refusing a preset still in use is the
    caller's part (the admin's permission check, the refresh's retiring)."""
    with transaction.atomic():
        presets_deleting.send(sender=Preset, presets=presets)
        presets.delete()


class PresetFile(models.Model):
    preset = models.ForeignKey(Preset, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveIntegerField(default=0)
    path = models.CharField(
        max_length=MAX_LENGTHS["path"],
        validators=[validate_model_path],
        help_text="Relative to the model root, e.g. checkpoints/x.safetensors",
    )
    url = models.CharField(max_length=MAX_LENGTHS["url"], validators=[validate_download_url])
    size = models.CharField(
        max_length=MAX_LENGTHS["size"],
        blank=True,
        validators=[validate_size],
        help_text='As written upstream, e.g. "4.8GB"',
    )
    approx_bytes = models.BigIntegerField(null=True, blank=True, editable=False, help_text="Approximate, from size")
    exact_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_BYTES)],
        help_text="Exact byte count, when known",
    )
    sha256 = models.CharField(
        max_length=64, blank=True, validators=[RegexValidator(r"^[0-9a-f]{64}$", "64 lowercase hex digits")]
    )
    optional = models.BooleanField(
        default=False, help_text="Not needed for the preset to count as installed (upstream's optional flag)."
    )
    # Link health: what the file's source answered when last asked (downloads/links.py).
    LINK_OK = "ok"
    LINK_NOT_FOUND = "not_found"
    LINK_NEEDS_TOKEN = "needs_token"
    LINK_STATUSES = [
        (LINK_OK, "Works"),
        (LINK_NOT_FOUND, "Gone (404)"),
        (LINK_NEEDS_TOKEN, "Needs a token"),
        ("refused", "Token refused"),
        ("timeout", "Timed out"),
        ("error", "Error"),
    ]
    link_status = models.CharField(max_length=12, choices=LINK_STATUSES, blank=True, editable=False)
    link_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    link_message = models.CharField(max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.path

    def save(self, *args, **kwargs):
        self.approx_bytes = parse_size(self.size)
        super().save(*args, **kwargs)

    def learn_from_source(self, size, sha256):
        """Fill in the exact size and sha256 the catalogue left out with what the file's source
        declared (and its download was verified against), so the installed check becomes exact.
        What the catalogue gives is never replaced; a refresh keeps what was learned while the
        file's URL stays the same (presets.refresh.with_learned)."""
        if size and self.exact_bytes is None:
            PresetFile.objects.filter(pk=self.pk, exact_bytes__isnull=True).update(exact_bytes=size)
            self.exact_bytes = size
        if sha256 and not self.sha256:
            PresetFile.objects.filter(pk=self.pk, sha256="").update(sha256=sha256)
            self.sha256 = sha256

    @classmethod
    def from_catalogue_entry(cls, preset_id, position, entry):
        return cls(
            preset_id=preset_id,
            position=position,
            path=entry["path"],
            url=entry["url"],
            size=entry["size"],
            approx_bytes=parse_size(entry["size"]),
            exact_bytes=entry.get("size_bytes"),
            sha256=entry.get("sha256", ""),
            optional=entry.get("optional", False),
        )


PRESET_ROW_FIELDS = (
    "id", "name", "category_id", "type", "description", "use_case", "tags",
    "download_size", "approx_download_bytes", "source", "retired_at",
)  # fmt: skip
FILE_ROW_FIELDS = (
    "preset_id", "path", "url", "size", "approx_bytes", "exact_bytes", "sha256", "optional", "link_status",
    "link_message",
)  # fmt: skip


def preset_rows(presets):
    """The presets of a queryset as plain dicts, each with its `files` as dicts, in two queries.

    The catalogue API, export and refresh handle thousands of presets at a time: plain rows
    cost a fraction of model instances there.
    """
    rows = list(presets.values(*PRESET_ROW_FIELDS))
    by_id = {}
    for row in rows:
        row["files"] = []
        by_id[row["id"]] = row
    files = PresetFile.objects.filter(preset__in=presets.values("pk")).order_by("preset_id", "position", "id")
    for file in files.values(*FILE_ROW_FIELDS):
        by_id[file["preset_id"]]["files"].append(file)
    return rows


def catalogue_entry(row):
    """A preset row as a presets.yaml entry, equal to what the loader makes of the same text."""
    files = []
    for file in row["files"]:
        entry = {"path": file["path"], "url": file["url"], "size": file["size"]}
        if file["optional"]:
            entry["optional"] = True
        if file["sha256"]:
            entry["sha256"] = file["sha256"]
        if file["exact_bytes"] is not None:
            entry["size_bytes"] = file["exact_bytes"]
        files.append(entry)
    return {
        "name": row["name"],
        "category": row["category_id"],
        "type": row["type"],
        "description": row["description"],
        "use_case": row["use_case"],
        "download_size": row["download_size"],
        "tags": list(row["tags"]),
        "files": files,
    }


def file_is_installed(file, sizes):
    """On disk, not found corrupt by a verify, and of the exact size when we know it (upstream
    sizes are only approximate). `sizes` is what disk_sizes answers."""
    on_disk = sizes.get(file["path"])
    if not on_disk or file["path"] in sizes.corrupt:
        return False
    return file["exact_bytes"] is None or on_disk == file["exact_bytes"]


def preset_is_installed(files, sizes):
    """Every required (non-optional) file is installed."""
    required = [f for f in files if not f["optional"]]
    return bool(required) and all(file_is_installed(f, sizes) for f in required)


def model_roots():
    """Where model files are looked for: the model root, its legacy folders and extra_model_paths.yaml."""
    return ModelRoots.from_settings(settings.MODEL_BASE_PATH, settings.COMFYUI_EXTRA_MODEL_PATHS)


class DiskSizes(dict):
    """Each preset file path found on disk (wherever ComfyUI would find it) -> its size, and in
    `corrupt` those of them a verify found not to match their sha256: on disk, yet not installed."""

    def __init__(self, sizes, corrupt):
        super().__init__(sizes)
        self.corrupt = frozenset(corrupt) & self.keys()


def disk_sizes(paths):
    """The sizes of the preset files on disk, with the corrupt marks among them (what
    file_is_installed and preset_is_installed judge by)."""
    return with_corrupt_marks(model_roots().file_sizes(paths))


def with_corrupt_marks(sizes):
    """Sizes found on disk (path -> bytes) as the installed rule takes them: with the marks of
    the files a verify found corrupt."""
    return DiskSizes(sizes, CorruptFile.objects.values_list("path", flat=True))


def locate_file(path):
    """The file on disk a preset file path names (wherever ComfyUI would find it), or None."""
    return model_roots().find(path)


class CorruptFile(models.Model):
    """A model file a verify found not to match its known sha256. While marked, the file counts
    as not installed (so its presets show as such, and an install fetches it again); a completed
    download of the path, or a verify that matches, clears the mark."""

    path = models.CharField(max_length=MAX_LENGTHS["path"], unique=True, help_text="Relative to the model root")
    expected_sha256 = models.CharField(max_length=64)
    actual_sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(help_text="Bytes on disk when it was checked")
    found_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.path


def mark_corrupt(path, expected_sha256, actual_sha256, size):
    CorruptFile.objects.update_or_create(
        path=path, defaults={"expected_sha256": expected_sha256, "actual_sha256": actual_sha256, "size": size}
    )


def corrupt_files():
    """The files a verify found corrupt, as ``<canonical folder>/<name>`` keys (a workflow may
    name a file's folder by its legacy name, the catalogue by its new one)."""
    keys = set()
    for path in CorruptFile.objects.values_list("path", flat=True):
        folder, _, name = path.partition("/")
        keys.add(f"{canonical_folder(folder)}/{name}")
    return keys


def clear_corrupt(paths):
    """The files at these paths are good again (downloaded anew, verified) or gone (deleted)."""
    CorruptFile.objects.filter(path__in=list(paths)).delete()


class CatalogueSource(models.Model):
    """Where the catalogue was last refreshed from, for conditional requests and the admin."""

    url = models.CharField(max_length=2000, blank=True)
    version = models.CharField(max_length=MAX_LENGTHS["version"], blank=True)
    etag = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.url or 'local file'} (version {self.version or '?'})"

    @classmethod
    def current(cls):
        source, _ = cls.objects.get_or_create(pk=1)
        return source
