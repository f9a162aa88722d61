"""The dashboard socket: a snapshot of the queue on connect, then every event as it happens."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from downloads.events import join, leave
from downloads.queue import queue_snapshot


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        if not self.scope["user"].is_authenticated:
            await self.close()  # before accept: the handshake is refused with 403
            return
        await self.accept()
        await join(self)
        snapshot = await database_sync_to_async(queue_snapshot)()
        await self.send_json({"type": "queue_updated", **snapshot})

    async def disconnect(self, code):
        await leave(self)
