"""The dashboard socket: a snapshot of the queue on connect, then every event as it happens."""

from channels.generic.websocket import AsyncWebsocketConsumer

from realtime.sockets import join, leave, snapshot_text


class DashboardConsumer(AsyncWebsocketConsumer):
    # Events reach the socket through its process's pump (realtime.sockets), not through a
    # channel of its own: no Redis connection per socket, and a Redis restart closes no socket.
    channel_layer_alias = None

    async def connect(self):
        if not self.scope["user"].is_authenticated:
            await self.close()  # before accept: the handshake is refused with 403
            return
        await self.accept()
        await join(self)
        await self.send(text_data=await snapshot_text())

    async def receive(self, text_data=None, bytes_data=None):
        """The dashboard only listens: whatever a client sends, well-formed or not, is ignored."""

    async def disconnect(self, code):
        await leave(self)
