"""What downloads tells the apps that sit beside it without importing them: they connect
receivers in their AppConfig.ready() (disk keeps the audit of what a verify found)."""

from django.dispatch import Signal

verify_finished = Signal()
"""Sent by the worker with `job` (a verify DownloadJob), `paths` (the files it looked at),
`bytes_checked` and `result` (in words: "ok: N files; corrupt: [...]; not checkable: [...]")."""
