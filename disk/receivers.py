"""What disk does when downloads tells it something (downloads never imports disk)."""

from disk.models import StorageAction


def record_verify(sender, job, paths, bytes_checked, result, **kwargs):
    """Every verify's result goes into the audit, under who asked for it."""
    StorageAction.record(
        StorageAction.Kind.VERIFY, job.requested_by, paths, bytes_checked, preset_id=job.preset_id, result=result
    )
