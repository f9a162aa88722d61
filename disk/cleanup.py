"""Clean-up: delete files no preset lists and .part files no download job holds, after a preview.

Each path is checked against a fresh survey of the disk, so a page open for an hour cannot delete
what has since become a preset's file or a download's .part.
"""

from disk.models import StorageAction
from disk.survey import Survey
from realtime.events import STORAGE_CHANGED, publish
from storage import Refused


def clean_up(paths, confirm=False, user=None):
    """The preview (confirm False: nothing is deleted) or the deletion of `paths`, shown paths as
    the storage JSON gives them. Returns the answer of `POST /api/storage/cleanup`."""
    survey = Survey()
    chosen, refused = [], []
    for path in dict.fromkeys(paths):
        entry, reason = _may_go(survey, path)
        if reason:
            refused.append({"path": path, "reason": reason})
        else:
            chosen.append(entry)
    if not confirm:
        return {
            "delete": [{"path": e.path, "bytes": _bytes(e)} for e in chosen],
            "refused": refused,
            "freed_bytes": sum(_bytes(e) for e in chosen),
        }
    deleted = []
    for entry in chosen:
        try:
            survey.roots.remove(entry.full)
        except (Refused, OSError) as exc:
            refused.append({"path": entry.path, "reason": str(exc)})
        else:
            deleted.append(entry)
    freed = sum(_bytes(e) for e in deleted)
    StorageAction.record(
        "cleanup",
        user,
        [e.path for e in deleted],
        bytes=freed,
        result=f"{len(deleted)} deleted" + (f", {len(refused)} refused" if refused else ""),
    )
    if deleted:
        publish(STORAGE_CHANGED, reason="cleanup", preset_id=None)
    return {"deleted": [e.path for e in deleted], "refused": refused, "freed_bytes": freed}


def _may_go(survey, path):
    """(the entry, None) when `path` may be deleted, else (None, why not)."""
    if not isinstance(path, str):
        return None, "not a path"
    job = survey.held.get(path)
    if job is not None:
        return None, f"download job {job} holds it"
    entry = survey.by_path.get(path)
    if entry is None:
        return None, "no such file under the model root or an extra model path"
    if not entry.partial and survey.managed(entry):
        return None, "a preset lists it: uninstall the preset instead"
    return entry, None


def _bytes(entry):
    """What deleting it frees: a .part holds its ranges done, a link nothing."""
    return entry.partial_bytes if entry.partial else entry.size
