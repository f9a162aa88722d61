"""Getting the worker's events to every browser, whichever process they are raised in.

The download worker runs in its own process, and Channels' in-memory layer does not cross
processes. Two ways, chosen by configuration:

- With `REDIS_URL` (scale-out), `publish` sends to a channels-redis group; each web process
  listens on one channel of it and writes every event to its own sockets.
- Without Redis (the embedded default), `publish` appends the event to the `Event` table, an
  outbox; each web process runs one `pump` that reads new rows every EVENT_POLL_INTERVAL and
  writes them to its own sockets.

We chose the outbox over a third-party database channel layer (none is well kept) and over
having the worker call the web process (it would need to know every web process, and events
raised while none listens would be lost). The outbox costs one indexed query per poll per web
process, keeps events in order, survives a web restart, and its delay is bounded by the poll
interval (25 ms by default). A client that (re)connects first gets a full snapshot of the
queue, so it never depends on having seen earlier events.
"""

import asyncio
import json
import logging
import time
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

GROUP = "dashboard"


def publish(event_type, **payload):
    """Send an event to every connected browser (from any process, sync code)."""
    event = {"type": event_type, "at": time.time(), **payload}
    if settings.EVENTS_VIA_CHANNEL_LAYER:
        try:
            async_to_sync(get_channel_layer().group_send)(GROUP, broadcast(event))
        except Exception as error:  # Redis away: the download goes on, browsers get a snapshot later
            log.warning("event %s not sent: %s", event_type, error)
    else:
        from downloads.models import Event

        Event.objects.create(type=event_type, payload=event)


def broadcast(event):
    """The Redis group message: the event encoded once, not once per socket."""
    return {"type": "broadcast", "text": json.dumps(event, separators=(",", ":"))}


def publish_queue():
    from downloads.queue import queue_snapshot

    publish("queue_updated", **queue_snapshot())


_local_sockets = set()
_pump_task = None
GROUP_RENEWAL = 3600  # seconds; channels-redis forgets group members after a day


async def join(consumer):
    """Subscribe a socket to this process's events (the pump starts with the first socket)."""
    global _pump_task
    if _pump_task is None or _pump_task.done():
        pump = channel_layer_pump if settings.EVENTS_VIA_CHANNEL_LAYER else outbox_pump
        _pump_task = asyncio.get_running_loop().create_task(pump())
    _local_sockets.add(consumer)


async def leave(consumer):
    _local_sockets.discard(consumer)


async def fan_out(text):
    """Write an event to every socket of this process, straight away: no channel layer round trip
    per socket, which is what limits how many sockets one process serves in time."""
    for socket in list(_local_sockets):
        try:
            await socket.send(text_data=text)
        except Exception:  # a socket closing under us: it leaves, the others go on
            _local_sockets.discard(socket)


async def outbox_pump():
    """Embedded: hand outbox rows to this process's sockets, oldest first, from the newest at start."""
    from downloads.models import Event

    last_id = await sync_to_async(Event.last_id)()
    cleaned_at = timezone.now()
    while True:
        try:
            for event_id, event in await sync_to_async(Event.after)(last_id):
                await fan_out(json.dumps(event, separators=(",", ":")))
                last_id = event_id
            if timezone.now() - cleaned_at > timedelta(minutes=5):
                cleaned_at = timezone.now()
                await sync_to_async(Event.prune)()
        except Exception:  # a busy database must not end the pump: log and poll again
            log.exception("event pump")
        await asyncio.sleep(settings.EVENT_POLL_INTERVAL)


async def channel_layer_pump():
    """Scale-out: this process listens on one channel of the Redis group and fans out locally.

    When Redis goes away (a restart forgets the group and the messages meanwhile), the pump
    keeps trying; once back it joins the group again and sends every socket a fresh snapshot,
    so no page stays on a state it missed the end of.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    joined_at = None
    lost = False
    while True:
        try:
            if joined_at is None or time.monotonic() - joined_at > GROUP_RENEWAL:
                await layer.group_add(GROUP, channel)
                joined_at = time.monotonic()
                if lost:
                    lost = False
                    log.warning("event pump: Redis is back")
                    await fan_out(await snapshot_text())
            message = await asyncio.wait_for(layer.receive(channel), timeout=60)
            await fan_out(message["text"])
        except TimeoutError:
            continue
        except Exception as error:  # Redis away for a moment must not end the pump: try again
            if not lost:
                log.warning("event pump: Redis unavailable (%s); retrying every second", error)
            lost, joined_at = True, None
            await asyncio.sleep(1)


async def snapshot_text():
    """The whole queue as one queue_updated event: what a socket gets first, and after an outage."""
    from downloads.queue import queue_snapshot

    snapshot = await database_sync_to_async(queue_snapshot)()
    return json.dumps({"type": "queue_updated", **snapshot}, separators=(",", ":"))
