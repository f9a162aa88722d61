"""This process's dashboard sockets: what each gets first, and the one pump that feeds them all.

An event is written straight to each socket of the process: a channel layer round trip per
socket is what limits how many sockets one process serves in time.
"""

import asyncio

from channels.db import database_sync_to_async

from realtime.events import QUEUE_UPDATED
from realtime.transports import encode, transport

_local_sockets = set()
_pump_task = None
_snapshot = None


def provide_snapshot(function):
    """Name the function whose result is the QUEUE_UPDATED payload that a socket gets when it
    connects and after events were lost. The downloads app provides its queue, in its
    AppConfig.ready(): realtime knows nothing of downloads."""
    global _snapshot
    _snapshot = function


async def snapshot_text():
    """The whole queue as one QUEUE_UPDATED event."""
    snapshot = await database_sync_to_async(_snapshot)()
    return encode({"type": QUEUE_UPDATED, **snapshot})


async def join(socket):
    """Subscribe a socket to this process's events (the pump starts with the first socket)."""
    global _pump_task
    if _pump_task is None or _pump_task.done():
        _pump_task = asyncio.get_running_loop().create_task(transport().pump(fan_out, fan_out_snapshot))
    _local_sockets.add(socket)


async def leave(socket):
    _local_sockets.discard(socket)


async def fan_out(text):
    """Write an encoded event to every socket of this process."""
    for socket in list(_local_sockets):
        try:
            await socket.send(text_data=text)
        except Exception:  # a socket closing under us: it leaves, the others go on
            _local_sockets.discard(socket)


async def fan_out_snapshot():
    await fan_out(await snapshot_text())
