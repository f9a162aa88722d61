"""What the browsers are told, and how to tell them.

The names are those the pages' scripts (static/presetsite/models.js, templates.js) listen for.
"""

import time

from realtime.transports import transport

QUEUE_UPDATED = "queue_updated"  # {current, queue, active_downloads}: also what a socket gets first
DOWNLOAD_PROGRESS = "download_progress"
DOWNLOAD_RETRYING = "download_retrying"
DOWNLOAD_COMPLETE = "download_complete"
DOWNLOAD_FAILED = "download_failed"
CATALOGUE_REFRESHED = "catalogue_refreshed"
STORAGE_CHANGED = "storage_changed"  # {reason, preset_id?}: files were added to or removed from the model disk


def publish(event_type, **payload):
    """Send an event to every connected browser (from any process, sync code)."""
    transport().publish({"type": event_type, "at": time.time(), **payload})


def publish_catalogue_refreshed(sender, result, **kwargs):
    """presets' catalogue_refreshed signal: every open models page hears of the refresh, and
    reloads the catalogue when it changed."""
    publish(
        CATALOGUE_REFRESHED,
        added=result.added,
        changed=result.changed,
        removed=result.removed,
        retired=result.retired,
        version=result.version,
    )
