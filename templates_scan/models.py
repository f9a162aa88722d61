"""Scanned workflow templates and the model files each one needs."""

from django.db import models


class Template(models.Model):
    """A workflow JSON file found in one of COMFYUI_TEMPLATE_DIRS.

    `mtime_ns` and `size` are what the file looked like when it was parsed: a file that still
    matches both is not parsed again. Whether it would run is not stored: it depends on the
    model files on disk, which change without the template, so each report checks them anew.
    """

    path = models.CharField(max_length=1000, unique=True)
    name = models.CharField(max_length=300)
    mtime_ns = models.BigIntegerField()
    size = models.BigIntegerField()
    format = models.CharField(max_length=10, blank=True, help_text='"ui" or "api"')
    error = models.TextField(blank=True, help_text="Why the file could not be read as a workflow")
    warnings = models.JSONField(default=list, blank=True)
    scanned_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "path"]

    def __str__(self):
        return self.name


class ModelReference(models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=1000, help_text="As the workflow writes it")
    directory = models.CharField(
        max_length=100,
        blank=True,
        help_text="ComfyUI model folder, e.g. checkpoints; empty when the workflow does not say",
    )
    path = models.CharField(max_length=1000, help_text="Inside the folder, forward slashes")
    nodes = models.JSONField(default=list)
    url = models.CharField(max_length=2000, blank=True)
    hash = models.CharField(max_length=200, blank=True)
    guess = models.CharField(max_length=100, blank=True, help_text="No folder given: the one its node or name suggests")
    managed = models.CharField(max_length=500, blank=True, help_text="What the node downloads by itself, and where")

    class Meta:
        ordering = ["template", "directory", "path"]

    def __str__(self):
        return f"{self.directory}/{self.path}"
