"""What presets tells the apps above it, which it never imports: they connect receivers to these
in their AppConfig.ready() and act on catalogue changes there (downloads, for its jobs and files)."""

from django.dispatch import Signal

presets_in_use = Signal()
"""Sent with `presets` (a queryset) before a refresh deletes the presets upstream dropped. Each
receiver returns the ids of those it still needs (a download in the queue): they are retired instead."""

presets_deleting = Signal()
"""Sent with `presets` (a queryset) just before they are deleted, in the same transaction: the last
moment to read what hangs off them (the paths of their downloads' .part files)."""

catalogue_refreshed = Signal()
"""Sent with `result` (a presets.refresh.RefreshResult) once a refresh is committed and its copy kept."""
