"""The subscribers compared in the inbound figures, all doing the same work per message.

Each one decodes every payload into a fresh dict (the connector does that before its callbacks run;
paho gets the same ``decode_payload``, so both use the run's codec) and keeps ``(run id, task id)``
of each arrival, checked afterwards per publisher for loss, duplicates and order:

- `ConnectorSubscriber`: an `MqttConnector` with one callback on the filter.
- `PahoSubscriber`: paho-mqtt's threaded client (``loop_start``, MQTT 3.1.1: faster for paho than
  MQTT 5), the callback in ``on_message``.

The C reference (``mosquitto_sub``) is `ArrivalCounter` in ``_broker``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import paho.mqtt.client as paho
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import Connector, decode_payload
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ._broker import BenchError, unique
from ._workload import Delivery, check_sequence, seq_of

Arrival = tuple[object, object]


def _key(payload: dict[str, Any]) -> Arrival:
    try:
        return payload["run_id"], payload["body"]["task_id"]
    except (KeyError, TypeError):
        return None, None


def check_per_publisher(arrivals: Iterable[Arrival], expected: dict[str, int]) -> dict[str, Delivery]:
    """The loss/duplicate/order check of `arrivals` for each run id in `expected` (its message count).

    Arrivals from a run id not in `expected` (or unreadable) are counted as unexpected on the first
    publisher's check, so they are never silently ignored.
    """
    seqs: dict[object, list[int]] = defaultdict(list)
    for run_id, task_id in arrivals:
        try:
            seq = seq_of({"body": {"task_id": task_id}})
        except (ValueError, KeyError, TypeError):
            seq = -1
        seqs[run_id if run_id in expected else None].append(seq)
    out = {run_id: check_sequence(seqs.get(run_id, []), count) for run_id, count in expected.items()}
    strays = len(seqs.get(None, []))
    if strays and out:
        first = next(iter(out))
        out[first] = dataclasses.replace(out[first], foreign=out[first].foreign + strays)
    return out


class Subscriber(Protocol):
    """One way of receiving messages into a callback; `setup` returns once subscribed."""

    name: str

    @property
    def arrivals(self) -> list[Arrival]:
        """What arrived, in order (``(run id, task id)``; ``(None, None)`` when unreadable)."""
        ...

    async def setup(self, topic_filter: str, expected: int) -> None:
        """Connect and subscribe (not timed); returns once the subscription is in place."""
        ...

    async def wait(self, idle_timeout: float) -> tuple[float, bool]:
        """Until `expected` arrived or none for `idle_timeout` s: (perf_counter of the last, complete)."""
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...


class _Progress:
    """Arrival bookkeeping shared by the subscribers (the done flag is a threading.Event for paho)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.expected = 0
        self.last_arrival = 0.0
        self.done = threading.Event()

    def reset(self, expected: int) -> None:
        self.arrivals = []
        self.expected = expected
        self.last_arrival = 0.0
        self.done.clear()

    async def wait(self, idle_timeout: float, total_timeout: float = 120.0) -> tuple[float, bool]:
        deadline = time.monotonic() + total_timeout
        seen, idle_since = -1, time.monotonic()
        while not self.done.is_set():
            await asyncio.sleep(0.02)  # polling a condition (arrivals), not synchronising on time
            now = time.monotonic()
            if len(self.arrivals) != seen:
                seen, idle_since = len(self.arrivals), now
                self.last_arrival = time.perf_counter()
            elif now - idle_since > idle_timeout or now > deadline:
                return self.last_arrival, False
        return self.last_arrival, True


class ConnectorSubscriber:
    """A `Connector` (made by `factory`) with one callback keeping ``(run id, task id)``."""

    def __init__(self, name: str, factory: Callable[[], Connector]) -> None:
        self.name = name
        self._factory = factory
        self._connector: Connector | None = None
        self._progress = _Progress()
        # What the connector counted in ``stats.dropped_inbound`` (None: it has no such counter).
        self.dropped_inbound: int | None = None

    @property
    def arrivals(self) -> list[Arrival]:
        """What arrived, in order."""
        return self._progress.arrivals

    async def setup(self, topic_filter: str, expected: int) -> None:
        """Connect and subscribe (returns after the SUBACK)."""
        progress = self._progress
        progress.reset(expected)
        connector = self._factory()
        await connector.connect()
        self._connector = connector

        async def callback(topic: str, payload: dict[str, Any]) -> None:
            arrivals = progress.arrivals
            arrivals.append(_key(payload))
            if len(arrivals) >= progress.expected:
                progress.last_arrival = time.perf_counter()
                progress.done.set()

        await connector.subscribe(topic_filter, callback)

    async def wait(self, idle_timeout: float) -> tuple[float, bool]:
        """See `Subscriber.wait`."""
        return await self._progress.wait(idle_timeout)

    async def close(self) -> None:
        """Disconnect."""
        connector = self._connector
        if connector is not None:
            self._connector = None
            await connector.disconnect()
            dropped = getattr(connector.stats, "dropped_inbound", None)
            self.dropped_inbound = None if dropped is None else int(dropped)


class PahoSubscriber:
    """paho-mqtt's threaded client subscribed at QoS 1; ``on_message`` decodes and keeps the keys."""

    name = "paho-mqtt"

    def __init__(
        self, server: MosquittoServer, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311
    ) -> None:
        self._server = server
        self._protocol = protocol
        self._client: paho.Client | None = None
        self._progress = _Progress()

    @property
    def arrivals(self) -> list[Arrival]:
        """What arrived, in order."""
        return self._progress.arrivals

    async def setup(self, topic_filter: str, expected: int) -> None:
        """Connect, start the network thread, subscribe; blocks until the SUBACK (10 s at most)."""
        progress = self._progress
        progress.reset(expected)
        # MQTT 3.1.1 by default: paho at its best here (its MQTT 5 parsing costs it 15 to 25 % more per
        # message; Mosquitto's limit of 20 unacknowledged QoS 1 messages for 3.1.1 does not hold it back).
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=unique("bench-paho-sub"), protocol=self._protocol
        )
        connected, subscribed = threading.Event(), threading.Event()

        def on_connect(*_args: Any) -> None:
            connected.set()

        def on_subscribe(*_args: Any) -> None:
            subscribed.set()

        def on_message(_client: Any, _userdata: Any, message: Any) -> None:
            try:
                key = _key(decode_payload(message.payload))
            except ValueError:
                key = (None, None)
            arrivals = progress.arrivals
            arrivals.append(key)
            if len(arrivals) >= progress.expected:
                progress.last_arrival = time.perf_counter()
                progress.done.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect(self._server.host, self._server.port)
        client.loop_start()
        self._client = client
        if not await asyncio.to_thread(connected.wait, 10.0):
            raise BenchError("paho-mqtt did not connect")
        client.subscribe(topic_filter, qos=1)
        if not await asyncio.to_thread(subscribed.wait, 10.0):
            raise BenchError("paho-mqtt did not get its SUBACK")

    async def wait(self, idle_timeout: float) -> tuple[float, bool]:
        """See `Subscriber.wait`."""
        return await self._progress.wait(idle_timeout)

    async def close(self) -> None:
        """Disconnect and stop the network thread."""
        client = self._client
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
            self._client = None
