"""Figure 3: control round trip. A requester publishes a control command at QoS 1, the responder's
callback decodes it and publishes a reply (QoS 0), the requester decodes the reply.

Measured from just before the request's ``publish`` to the requester having the decoded reply (and
the request's PUBACK). The reference is the same exchange between two raw aiomqtt clients with
TCP_NODELAY set, doing the same JSON work. Both pairs are connected at once and take turns exchange
by exchange, so a burst of load on this shared machine hits both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import Connector

from ._bench import Bench, percentile
from ._broker import BenchError, unique
from ._clients import quiet_logger
from ._connectors import ConnectorFactory, mqtt_factory
from ._report import Row, Series, Target
from ._workload import control_payload

_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
_TIMEOUT = 5.0


def _reply(request: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": request["request_id"], "status": "applied", "constraint": request["id"]}


class RawPair:
    """Two raw aiomqtt clients (TCP_NODELAY): the responder answers from an ``async for`` loop."""

    def __init__(self, server: MosquittoServer) -> None:
        base = unique("bench/rt-raw")
        self._request_topic, self._reply_topic = f"{base}/request", f"{base}/reply"
        logger = quiet_logger("aiomqtt-rt")
        self._responder = aiomqtt.Client(
            server.host,
            server.port,
            identifier=unique("rt-responder"),
            logger=logger,
            socket_options=_NODELAY,
        )
        self._requester = aiomqtt.Client(
            server.host,
            server.port,
            identifier=unique("rt-requester"),
            logger=logger,
            socket_options=_NODELAY,
        )
        self._task: asyncio.Task[None] | None = None
        self._replies: AsyncIterator[aiomqtt.Message] | None = None

    async def open(self) -> None:
        """Connect both clients, subscribe, start the responder."""
        await self._responder.__aenter__()
        await self._requester.__aenter__()
        await self._responder.subscribe(self._request_topic, qos=1)
        await self._requester.subscribe(self._reply_topic, qos=1)
        self._task = asyncio.create_task(self._respond())
        self._replies = aiter(self._requester.messages)

    async def _respond(self) -> None:
        responder = self._responder
        async for message in responder.messages:
            request = json.loads(message.payload)
            await responder.publish(self._reply_topic, json.dumps(_reply(request)).encode(), qos=0)

    async def exchange(self, request_id: int) -> float:
        """One round trip; returns milliseconds."""
        assert self._replies is not None
        data = json.dumps(control_payload(request_id)).encode()
        start = time.perf_counter()
        await self._requester.publish(self._request_topic, data, qos=1)
        message = await asyncio.wait_for(anext(self._replies), _TIMEOUT)
        reply = json.loads(message.payload)
        elapsed = time.perf_counter() - start
        if reply["request_id"] != request_id:
            raise BenchError(f"raw pair: reply {reply['request_id']} for request {request_id}")
        return elapsed * 1e3

    async def close(self) -> None:
        """Stop the responder, disconnect both."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._requester.__aexit__(None, None, None)
        await self._responder.__aexit__(None, None, None)


class ConnectorPair:
    """Two connectors: the responder's subscription callback publishes the reply."""

    def __init__(self, factory: ConnectorFactory) -> None:
        base = unique("bench/rt-connector")
        self._request_topic, self._reply_topic = f"{base}/request", f"{base}/reply"
        self._responder: Connector = factory()
        self._requester: Connector = factory()
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def open(self) -> None:
        """Connect both connectors and subscribe."""
        await self._responder.connect()
        await self._requester.connect()
        await self._responder.subscribe(self._request_topic, self._on_request)
        await self._requester.subscribe(self._reply_topic, self._on_reply)

    async def _on_request(self, topic: str, payload: dict[str, Any]) -> None:
        await self._responder.publish(self._reply_topic, _reply(payload), qos=0)

    async def _on_reply(self, topic: str, payload: dict[str, Any]) -> None:
        future = self._waiting.pop(payload["request_id"], None)
        if future is not None and not future.done():
            future.set_result(payload)

    async def exchange(self, request_id: int) -> float:
        """One round trip; returns milliseconds."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        payload = control_payload(request_id)
        start = time.perf_counter()
        await self._requester.publish(self._request_topic, payload, qos=1)
        await asyncio.wait_for(future, _TIMEOUT)
        return (time.perf_counter() - start) * 1e3

    async def close(self) -> None:
        """Disconnect both."""
        await self._requester.disconnect()
        await self._responder.disconnect()


async def roundtrips(
    server: MosquittoServer, factory: ConnectorFactory, count: int, warmup: int
) -> tuple[list[float], list[float]]:
    """(raw pair ms, connector pair ms) for `count` exchanges each after `warmup`, taking turns."""
    raw, connector = RawPair(server), ConnectorPair(factory)
    await raw.open()
    try:
        await connector.open()
        try:
            raw_ms: list[float] = []
            connector_ms: list[float] = []
            for i in range(warmup + count):
                first, second = (raw, connector) if i % 2 else (connector, raw)
                a = await first.exchange(i)
                b = await second.exchange(i)
                if i >= warmup:
                    raw_ms.append(a if first is raw else b)
                    connector_ms.append(b if first is raw else a)
            return raw_ms, connector_ms
        finally:
            await connector.close()
    finally:
        await raw.close()


async def figure_roundtrip(bench: Bench) -> list[Row]:
    """Rows: p99 connector vs raw pair (target <= 1.2x), and p50 as context."""
    sizes = bench.sizes
    raw_p50, raw_p99 = Series("raw aiomqtt pair p50", "ms"), Series("raw aiomqtt pair p99", "ms")
    con_p50, con_p99 = Series("MqttConnector p50", "ms"), Series("MqttConnector p99", "ms")
    factory = mqtt_factory(bench.server)
    for rep in range(sizes.repeats):
        raw, con = await roundtrips(bench.server, factory, sizes.roundtrips, sizes.roundtrip_warmup)
        raw_p50.add(percentile(raw, 50))
        raw_p99.add(percentile(raw, 99))
        con_p50.add(percentile(con, 50))
        con_p99.add(percentile(con, 99))
        bench.log(
            f"[round trip {rep + 1}/{sizes.repeats}] raw p50 {raw_p50.samples[-1]:.3f} ms "
            f"p99 {raw_p99.samples[-1]:.3f} ms; connector p50 {con_p50.samples[-1]:.3f} ms "
            f"p99 {con_p99.samples[-1]:.3f} ms"
        )
    note = f"{sizes.roundtrips} round trips per pair per run, the pairs taking turns"
    return [
        Row("3. control round trip", con_p99, raw_p99, target=Target("<=", 1.2), note=note),
        Row("3. control round trip", con_p50, raw_p50, note="context"),
    ]
