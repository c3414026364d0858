"""Figure 3: control round trip. A requester publishes a control command at QoS 1, the responder's
callback decodes it and publishes a reply (QoS 0), the requester decodes the reply.

Measured from just before the request's ``publish`` to the requester having the decoded reply (and
the request's PUBACK). The reference is the same exchange between two raw aiomqtt clients with
TCP_NODELAY set, doing the same JSON work. Both pairs live in this process, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any

import aiomqtt
from cascade.connectors.mqtt.mosquitto import MosquittoServer

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


async def raw_roundtrips(server: MosquittoServer, count: int, warmup: int) -> list[float]:
    """Milliseconds per round trip for `count` exchanges (after `warmup`) between raw aiomqtt clients."""
    base = unique("bench/rt-raw")
    request_topic, reply_topic = f"{base}/request", f"{base}/reply"
    logger = quiet_logger("aiomqtt-rt")
    responder = aiomqtt.Client(
        server.host, server.port, identifier=unique("rt-responder"), logger=logger, socket_options=_NODELAY
    )
    requester = aiomqtt.Client(
        server.host, server.port, identifier=unique("rt-requester"), logger=logger, socket_options=_NODELAY
    )
    async with responder, requester:
        await responder.subscribe(request_topic, qos=1)
        await requester.subscribe(reply_topic, qos=1)

        async def respond() -> None:
            async for message in responder.messages:
                request = json.loads(message.payload)
                await responder.publish(reply_topic, json.dumps(_reply(request)).encode(), qos=0)

        task = asyncio.create_task(respond())
        try:
            replies = aiter(requester.messages)
            times: list[float] = []
            for i in range(warmup + count):
                data = json.dumps(control_payload(i)).encode()
                start = time.perf_counter()
                await requester.publish(request_topic, data, qos=1)
                message = await asyncio.wait_for(anext(replies), _TIMEOUT)
                reply = json.loads(message.payload)
                elapsed = time.perf_counter() - start
                if reply["request_id"] != i:
                    raise BenchError(f"raw pair: reply {reply['request_id']} for request {i}")
                if i >= warmup:
                    times.append(elapsed * 1e3)
            return times
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def connector_roundtrips(factory: ConnectorFactory, count: int, warmup: int) -> list[float]:
    """Milliseconds per round trip between two connectors made by `factory`."""
    base = unique("bench/rt-connector")
    request_topic, reply_topic = f"{base}/request", f"{base}/reply"
    responder, requester = factory(), factory()
    await responder.connect()
    await requester.connect()
    try:
        loop = asyncio.get_running_loop()
        waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

        async def on_request(topic: str, payload: dict[str, Any]) -> None:
            await responder.publish(reply_topic, _reply(payload), qos=0)

        async def on_reply(topic: str, payload: dict[str, Any]) -> None:
            future = waiting.pop(payload["request_id"], None)
            if future is not None and not future.done():
                future.set_result(payload)

        await responder.subscribe(request_topic, on_request)
        await requester.subscribe(reply_topic, on_reply)
        times: list[float] = []
        for i in range(warmup + count):
            payload = control_payload(i)
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            waiting[i] = future
            start = time.perf_counter()
            await requester.publish(request_topic, payload, qos=1)
            await asyncio.wait_for(future, _TIMEOUT)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times.append(elapsed * 1e3)
        return times
    finally:
        await requester.disconnect()
        await responder.disconnect()


async def figure_roundtrip(bench: Bench) -> list[Row]:
    """Rows: p99 connector vs raw pair (target <= 1.2x), and p50 as context."""
    sizes = bench.sizes
    raw_p50, raw_p99 = Series("raw aiomqtt pair p50", "ms"), Series("raw aiomqtt pair p99", "ms")
    con_p50, con_p99 = Series("MqttConnector p50", "ms"), Series("MqttConnector p99", "ms")
    factory = mqtt_factory(bench.server)
    for rep in range(sizes.repeats):
        raw = await raw_roundtrips(bench.server, sizes.roundtrips, sizes.roundtrip_warmup)
        raw_p50.add(percentile(raw, 50))
        raw_p99.add(percentile(raw, 99))
        con = await connector_roundtrips(factory, sizes.roundtrips, sizes.roundtrip_warmup)
        con_p50.add(percentile(con, 50))
        con_p99.add(percentile(con, 99))
        line = (
            f"raw p50 {raw_p50.samples[-1]:.3f} ms p99 {raw_p99.samples[-1]:.3f} ms; "
            f"connector p50 {con_p50.samples[-1]:.3f} ms p99 {con_p99.samples[-1]:.3f} ms"
        )
        bench.log(f"[round trip {rep + 1}/{sizes.repeats}] {line}")
    note = f"{sizes.roundtrips} round trips per run"
    return [
        Row("3. control round trip", con_p99, raw_p99, target=Target("<=", 1.2), note=note),
        Row("3. control round trip", con_p50, raw_p50, note="context"),
    ]
