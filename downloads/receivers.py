"""What downloads does when the catalogue changes under it. presets sends these signals
(presets.signals) without knowing of downloads; DownloadsConfig.ready() connects them."""

from django.db import transaction

from downloads.models import DownloadJob, JobFile
from downloads.queue import delete_unclaimed_partials
from presets.models import PresetFile


def presets_with_active_jobs(sender, presets, **kwargs):
    """A refresh retires, instead of deleting, a preset whose download is in the queue."""
    active = DownloadJob.objects.active().filter(preset__in=presets)
    return set(active.values_list("preset_id", flat=True))


def delete_partials_of_deleted_presets(sender, presets, **kwargs):
    """Presets go with their job history: once that commits, their .part files go too, unless a
    remaining job may resume one (a rollback keeps them all)."""
    paths = [
        *PresetFile.objects.filter(preset__in=presets).values_list("path", flat=True),
        *JobFile.objects.filter(job__preset__in=presets).values_list("path", flat=True),
    ]
    transaction.on_commit(lambda: delete_unclaimed_partials(paths))
