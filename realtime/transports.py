"""Getting events to every web process, whichever process they are raised in.

The download worker runs in its own process, and Channels' in-memory layer does not cross
processes. Two transports, one of them chosen by configuration (`transport()`):

- `ChannelLayerTransport`, with `REDIS_URL` (scale-out): `publish` sends to a channels-redis
  group; each web process listens on one channel of it.
- `OutboxTransport`, without Redis (the embedded default): `publish` appends the event to the
  `Event` table; each web process reads new rows every EVENT_POLL_INTERVAL.

Either way each web process runs one `pump` that hands every event, encoded once, to its own
sockets (realtime.sockets).

We chose the outbox over a third-party database channel layer (none is well kept) and over
having the worker call the web process (it would need to know every web process, and events
raised while none listens would be lost). The outbox costs one indexed query per poll per web
process, keeps events in order, survives a web restart, and its delay is bounded by the poll
interval (25 ms by default). A client that (re)connects first gets a full snapshot of the
queue, so it never depends on having seen earlier events.
"""

import asyncio
import functools
import json
import logging
import time
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone

from realtime.models import Event

log = logging.getLogger(__name__)


def encode(event):
    return json.dumps(event, separators=(",", ":"))


class OutboxTransport:
    """Events as rows of the outbox table, polled by every web process."""

    PRUNE_EVERY = timedelta(minutes=5)

    def publish(self, event):
        Event.objects.create(type=event["type"], payload=event)

    async def pump(self, deliver, missed):
        """Deliver outbox rows, oldest first, from the newest at start. Nothing is ever missed:
        the rows wait in the table while the database is busy."""
        last_id = await sync_to_async(Event.last_id)()
        pruned_at = timezone.now()
        while True:
            try:
                for event_id, event in await sync_to_async(Event.after)(last_id):
                    await deliver(encode(event))
                    last_id = event_id
                if timezone.now() - pruned_at > self.PRUNE_EVERY:
                    pruned_at = timezone.now()
                    await sync_to_async(Event.prune)()
            except Exception:  # a busy database must not end the pump: log and poll again
                log.exception("event pump")
            await asyncio.sleep(settings.EVENT_POLL_INTERVAL)


class ChannelLayerTransport:
    """Events through a channels-redis group in which each web process holds one channel."""

    GROUP = "dashboard"
    GROUP_RENEWAL = 3600  # seconds; channels-redis forgets group members after a day

    def publish(self, event):
        """Sent once to the group, encoded once: not once per socket. Redis away, the download
        goes on; the browsers get a snapshot once the pumps reach Redis again."""
        try:
            async_to_sync(get_channel_layer().group_send)(self.GROUP, {"type": "broadcast", "text": encode(event)})
        except Exception as error:
            log.warning("event %s not sent: %s", event["type"], error)

    async def pump(self, deliver, missed):
        """Listen on one channel of the group and deliver each message.

        When Redis goes away (a restart forgets the group and the messages meanwhile), the pump
        keeps trying; once back it joins the group again and calls `missed`, so that every socket
        gets a fresh snapshot and no page stays on a state it missed the end of.
        """
        layer = get_channel_layer()
        channel = await layer.new_channel()
        joined_at = None
        lost = False
        while True:
            try:
                if joined_at is None or time.monotonic() - joined_at > self.GROUP_RENEWAL:
                    await layer.group_add(self.GROUP, channel)
                    joined_at = time.monotonic()
                    if lost:
                        lost = False
                        log.warning("event pump: Redis is back")
                        await missed()
                message = await asyncio.wait_for(layer.receive(channel), timeout=60)
                await deliver(message["text"])
            except TimeoutError:
                continue
            except Exception as error:  # Redis away for a moment must not end the pump: try again
                if not lost:
                    log.warning("event pump: Redis unavailable (%s); retrying every second", error)
                lost, joined_at = True, None
                await asyncio.sleep(1)


@functools.cache
def transport():
    """The configured transport, chosen once per process: channels-redis with REDIS_URL, else the outbox."""
    return ChannelLayerTransport() if settings.EVENTS_VIA_CHANNEL_LAYER else OutboxTransport()


@receiver(setting_changed)
def choose_transport_again(setting, **kwargs):
    """A test that overrides the setting gets the transport it names."""
    if setting == "EVENTS_VIA_CHANNEL_LAYER":
        transport.cache_clear()
