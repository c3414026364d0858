"""The publishers compared in the throughput figure, all doing the same work.

Each one serialises every payload dict to the same compact JSON inside the timed part (the connector
does that in `publish`), sends it to one topic at the given QoS and never loses a message on purpose:

- `ConnectorPublisher`: any `Connector` (`MqttConnector`, `InMemoryConnector`); QoS 0 is a plain loop of
  ``await publish``; QoS 1 runs `window` coroutines that take the next payload in turn and await each
  acknowledgement (the connector's ordering keeps the sequence).
- `PahoPublisher`: paho-mqtt's threaded client (``loop_start``); QoS 1 with a bounded in-flight window.
- `AiomqttLoopPublisher`: a raw aiomqtt client awaiting each ``publish`` (library defaults).
- `NaiveTaskPublisher`: the design to avoid, one ``asyncio.create_task`` per publish on aiomqtt.
- `CClientPublisher`: ``mosquitto_pub -l`` reading pre-encoded lines from a file (the practical limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import aiomqtt
import paho.mqtt.client as paho
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import Connector
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ._broker import BenchError, Endpoint, find_client, unique
from ._workload import encoded

Payloads = list[dict[str, Any]]


def quiet_logger(name: str) -> logging.Logger:
    """A logger that drops everything below ERROR (aiomqtt warns once per pending call otherwise)."""
    logger = logging.getLogger(f"cascade.bench.{name}")
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


class Publisher(Protocol):
    """One way of publishing a list of payloads; `run` is the timed part."""

    name: str
    # Messages the publisher itself reported as failed (errors, timeouts), for the loss column.
    failures: int

    async def setup(self, topic: str, payloads: Payloads, qos: int) -> None:
        """Connect and prepare; not timed."""
        ...

    async def run(self) -> None:
        """Publish every payload (timed from its start to the last arrival at the subscriber)."""
        ...

    async def close(self) -> None:
        """Disconnect (after the subscriber has seen everything)."""
        ...


class ConnectorPublisher:
    """Publishes through a `Connector` made by `factory` (connected in `setup`)."""

    def __init__(self, name: str, factory: Callable[[], Connector], window: int = 256) -> None:
        self.name = name
        self.failures = 0
        self._factory = factory
        self._window = window
        self._connector: Connector | None = None
        self._topic = ""
        self._payloads: Payloads = []
        self._qos = 0

    async def setup(self, topic: str, payloads: Payloads, qos: int) -> None:
        """Make and connect the connector."""
        self._topic, self._payloads, self._qos = topic, payloads, qos
        self._connector = self._factory()
        await self._connector.connect()

    async def run(self) -> None:
        """QoS 0: ``await publish`` in a loop. QoS 1: `window` concurrent callers awaiting each ack."""
        connector = self._connector
        assert connector is not None
        topic = self._topic
        if self._qos == 0:
            publish = connector.publish
            for payload in self._payloads:
                await publish(topic, payload)
            return
        payloads = iter(self._payloads)

        async def caller(items: Iterator[dict[str, Any]]) -> None:
            for payload in items:
                await connector.publish(topic, payload, qos=1)

        await asyncio.gather(*(caller(payloads) for _ in range(self._window)))

    async def close(self) -> None:
        """Disconnect."""
        if self._connector is not None:
            await self._connector.disconnect()
            self._connector = None


class PahoPublisher:
    """paho-mqtt's threaded client: a network thread (``loop_start``) and the caller's publish loop.

    QoS 1 keeps at most `window` messages unacknowledged (a semaphore released by ``on_publish``), so
    nothing is refused and memory stays bounded.
    """

    def __init__(self, server: Endpoint, window: int = 256) -> None:
        self.name = "paho-mqtt"
        self.failures = 0
        self._server = server
        self._window_size = window
        self._window = threading.BoundedSemaphore(window)
        self._client: paho.Client | None = None
        self._topic = ""
        self._payloads: Payloads = []
        self._qos = 0

    async def setup(self, topic: str, payloads: Payloads, qos: int) -> None:
        """Connect and start the network thread; blocks until CONNACK (10 s at most)."""
        self._topic, self._payloads, self._qos = topic, payloads, qos
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique("bench-paho"))
        client.max_inflight_messages_set(self._window_size)
        client.max_queued_messages_set(0)
        connected = threading.Event()

        def on_connect(*_args: Any) -> None:
            connected.set()

        def on_publish(*_args: Any) -> None:
            if self._qos == 1:
                self._window.release()

        client.on_connect = on_connect
        client.on_publish = on_publish
        client.connect(self._server.host, self._server.port)
        client.loop_start()
        self._client = client
        if not await asyncio.to_thread(connected.wait, 10.0):
            raise BenchError("paho-mqtt did not connect")

    async def run(self) -> None:
        """Publish from this thread while paho's thread does the network I/O (blocks the event loop)."""
        client = self._client
        assert client is not None
        topic, qos, window = self._topic, self._qos, self._window
        publish = client.publish
        ok = MQTTErrorCode.MQTT_ERR_SUCCESS
        for payload in self._payloads:
            if qos == 1 and not window.acquire(timeout=30.0):
                raise BenchError("paho-mqtt: no acknowledgement for 30 s")
            info = publish(topic, encoded(payload), qos)
            if info.rc != ok:
                self.failures += 1
                if qos == 1:
                    window.release()

    async def close(self) -> None:
        """Disconnect and stop the network thread."""
        client = self._client
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
            self._client = None


class _AiomqttBase:
    def __init__(self, server: MosquittoServer) -> None:
        self.failures = 0
        self._server = server
        self._client: aiomqtt.Client | None = None
        self._topic = ""
        self._payloads: Payloads = []
        self._qos = 0

    async def setup(self, topic: str, payloads: Payloads, qos: int) -> None:
        """Connect with library defaults (no TCP_NODELAY)."""
        self._topic, self._payloads, self._qos = topic, payloads, qos
        client = aiomqtt.Client(
            self._server.host,
            self._server.port,
            identifier=unique("bench-aiomqtt"),
            logger=quiet_logger("aiomqtt"),
        )
        await client.__aenter__()
        self._client = client

    async def close(self) -> None:
        """Disconnect."""
        client = self._client
        if client is not None:
            self._client = None
            # The naive run may leave the connection broken; nothing to report here.
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)


class AiomqttLoopPublisher(_AiomqttBase):
    """A raw aiomqtt client: ``await client.publish(...)`` for each message, one after the other."""

    name = "raw aiomqtt loop"

    async def run(self) -> None:
        """Publish sequentially; QoS 1 waits for each PUBACK (stop and wait)."""
        client = self._client
        assert client is not None
        topic, qos = self._topic, self._qos
        for payload in self._payloads:
            await client.publish(topic, encoded(payload), qos=qos)


class NaiveTaskPublisher(_AiomqttBase):
    """The design to avoid: ``asyncio.create_task(client.publish(...))`` per message.

    Bounded by `deadline` seconds: tasks still pending then are cancelled and counted as failures,
    as are tasks that raised (aiomqtt's 10 s timeout, a lost connection).
    """

    name = "one task per publish (aiomqtt)"

    def __init__(self, server: MosquittoServer, deadline: float) -> None:
        super().__init__(server)
        self._deadline = deadline

    async def run(self) -> None:
        """Create every task, then wait for them up to the deadline."""
        client = self._client
        assert client is not None
        topic, qos = self._topic, self._qos
        tasks = [
            asyncio.create_task(client.publish(topic, encoded(payload), qos=qos))
            for payload in self._payloads
        ]
        done, pending = await asyncio.wait(tasks, timeout=self._deadline)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self.failures = len(pending) + sum(
            1 for task in done if not task.cancelled() and task.exception() is not None
        )


class CClientPublisher:
    """``mosquitto_pub -l``: reads one message per line from a pre-encoded file (no JSON work)."""

    name = "C clients (mosquitto_pub -l)"

    def __init__(
        self, server: Endpoint, timeout: float = 120.0, max_inflight: int | None = None
    ) -> None:
        self.failures = 0
        self._server = server
        self._timeout = timeout
        # QoS 1 messages mosquitto_pub keeps unacknowledged (``-M``); None: its default (20).
        self._max_inflight = max_inflight
        self._dir = Path(tempfile.mkdtemp(prefix="cascade-bench-pub-"))
        self._lines = self._dir / "lines.txt"
        self._args: list[str] = []

    async def setup(self, topic: str, payloads: Payloads, qos: int) -> None:
        """Write the payloads, one per line."""
        data = b"".join(encoded(payload) + b"\n" for payload in payloads)
        await asyncio.to_thread(self._lines.write_bytes, data)
        self._args = [find_client("mosquitto_pub"), "-h", self._server.host, "-p", str(self._server.port)]
        self._args += ["-t", topic, "-q", str(qos), "-l", "-i", unique("bench-cpub")]
        if self._max_inflight is not None:
            self._args += ["-M", str(self._max_inflight)]

    async def run(self) -> None:
        """Run ``mosquitto_pub -l`` to completion (includes its start-up and connect, a few ms)."""
        lines = await asyncio.to_thread(self._lines.open, "rb")
        with lines:
            process = await asyncio.create_subprocess_exec(
                *self._args, stdin=lines, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                _, err = await asyncio.wait_for(process.communicate(), self._timeout)
            except TimeoutError as exc:
                process.kill()
                await process.wait()
                raise BenchError("mosquitto_pub did not finish in time") from exc
        if process.returncode != 0:
            raise BenchError(f"mosquitto_pub exited with {process.returncode}: {err.decode()[-200:]}")

    async def close(self) -> None:
        """Delete the lines file."""
        self._lines.unlink(missing_ok=True)
        self._dir.rmdir()
