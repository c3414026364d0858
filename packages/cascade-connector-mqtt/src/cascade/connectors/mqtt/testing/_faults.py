"""`FaultProxy`: a small asyncio TCP proxy that breaks connections on purpose (tests, demos, drills).

Put it between a connector and its broker (``MqttConnector("127.0.0.1", proxy.port)``), then:

- `cut()` aborts every proxied connection at once (a TCP reset on both sides, no MQTT DISCONNECT), so
  the broker publishes the client's last will and the client sees an abrupt loss and reconnects;
- `blackhole` (attribute) makes new connections hang: accepted, never forwarded, never answered (a client
  waiting for its CONNACK times out);
- `refuse` (attribute) closes new connections as soon as they are accepted;
- `frozen` (attribute) makes every connection, open or new, swallow what it receives in both directions
  without closing (a dead network path that neither side has noticed yet); `discarded` counts the bytes;
- `record` (attribute) keeps a copy of every chunk forwarded while it is set, in `recorded`, in the order
  the proxy forwarded them across both directions: ``(connection number, "up" or "down", bytes)``
  ("up": client to broker). A packet may span chunks: join each direction's chunks to parse it.

Never used by `MqttConnector` itself.
"""

from __future__ import annotations

__all__ = ["FaultProxy"]

import asyncio
import contextlib
from types import TracebackType


class FaultProxy:
    """Forwards TCP connections from ``127.0.0.1:{port}`` to ``target_host:target_port``.

    Use ``async with FaultProxy(host, port) as proxy:`` (or `start`/`close`). `port` is chosen free when
    started. `connections` counts the connections accepted so far; `active` is how many are open;
    `discarded` counts the bytes swallowed while `frozen`; `recorded` holds what was forwarded while
    `record` was set (connection numbers count from 1, as `connections` does).
    """

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.blackhole = False
        self.refuse = False
        self.frozen = False
        self.discarded = 0
        self.record = False
        self.recorded: list[tuple[int, str, bytes]] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def active(self) -> int:
        """Connections open right now."""
        return len(self._pairs)

    async def start(self) -> None:
        """Listen on a free port (sets `port`)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def cut(self) -> int:
        """Abort every open connection (TCP reset on both sides); return how many were cut."""
        pairs = list(self._pairs)
        for client, upstream in pairs:
            client.transport.abort()
            if upstream is not None:
                upstream.transport.abort()
        self._pairs.clear()
        self._changed.set()
        return len(pairs)

    async def wait_for_discarded(self, count: int) -> None:
        """Return once at least `count` bytes were swallowed while `frozen` (no timeout: wrap it)."""
        while self.discarded < count:
            self._changed.clear()
            await self._changed.wait()

    async def wait_for_connections(self, count: int) -> None:
        """Return once at least `count` connections have been accepted in total (no timeout: wrap it)."""
        while self.connections < count:
            self._changed.clear()
            await self._changed.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._changed.set()
        if self.refuse:
            writer.transport.abort()
            return
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]
        if self.blackhole:
            pair = (writer, None)
            self._pairs.add(pair)
            with contextlib.suppress(ConnectionError):
                await reader.read()  # swallow everything until the client gives up
            self._pairs.discard(pair)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        forward = asyncio.create_task(self._pump(reader, up_writer, (number, "up")))
        backward = asyncio.create_task(self._pump(up_reader, writer, (number, "down")))
        self._tasks.update((forward, backward))
        try:
            await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pairs.discard(pair)
            for task in (forward, backward):
                task.cancel()
                self._tasks.discard(task)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: tuple[int, str]
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                if self.frozen:
                    self.discarded += len(data)
                    self._changed.set()
                    continue
                if self.record:
                    self.recorded.append((*label, data))
                writer.write(data)
                await writer.drain()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"FaultProxy(127.0.0.1:{self.port} -> {self.target_host}:{self.target_port}, "
            f"active={self.active}, blackhole={self.blackhole}, refuse={self.refuse}, frozen={self.frozen})"
        )
