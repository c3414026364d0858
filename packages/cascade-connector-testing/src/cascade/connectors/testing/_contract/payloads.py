"""Promise 2 of docs/contract.md (Payloads are JSON objects): the contract tests that check it."""

from __future__ import annotations

__all__ = ["PayloadTests"]

import copy
import json
from types import MappingProxyType
from typing import Any

import pytest
from cascade.connectors.protocol import (
    PayloadError,
)

from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
)


class PayloadTests:
    """Promise 2 (Payloads are JSON objects). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_invalid_payloads_raise_payload_error_before_sending(self, contract: ContractKit) -> None:
        """Promise 2 (payloads): a payload that is not a JSON object raises `PayloadError` in the caller.

        Non-mappings, NaN/Infinity, sets, bytes, arbitrary objects and non-string keys that JSON
        cannot encode must raise `PayloadError` from `publish` itself (qos 0 too: serialise in the
        caller, not in a background task) and nothing may be sent. If this fails, call the protocol's
        `encode_payload` before queueing.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("payloads")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        bad: list[Any] = [
            [1, 2],
            "text",
            None,
            42,
            {"x": float("nan")},
            {"x": float("inf")},
            {"x": {1, 2}},
            {"x": b"bytes"},
            {"x": object()},
            {("tuple", "key"): 1},
        ]
        for payload in bad:
            for qos in (0, 1):
                with pytest.raises(PayloadError):
                    await publisher.publish(topic, payload, qos=qos)
        await publisher.publish(topic, {"ok": True})
        await contract.wait_for(received, 1)
        await contract.sentinel(publisher, topic, received)
        assert received.payloads == [{"ok": True}], "a rejected payload was sent anyway"

    @contract_test()
    async def test_subscribers_receive_the_json_round_trip(self, contract: ContractKit) -> None:
        """Promise 2 (payloads): subscribers get a fresh plain `dict` equal to the JSON round trip.

        Tuples arrive as lists, unicode and NUL characters survive, big integers stay integers, and a
        read-only mapping is accepted. If this fails, encode with `encode_payload` and decode with
        `decode_payload` from the protocol package.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("roundtrip")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        payload: dict[str, Any] = {
            "text": "héllo ✓ 🚀",
            "nul": "a\u0000b",
            "big": 2**62,
            "negative": -7,
            "float": 0.1,
            "true": True,
            "none": None,
            "list": [1, "a", None, {"k": []}],
            "tuple": (1, 2),
            "nested": {"a": {"b": [{}]}},
            "empty": {},
        }
        await publisher.publish(topic, payload)
        await publisher.publish(topic, MappingProxyType({"read_only": 1}))
        await contract.wait_for(received, 2)
        expected = json.loads(json.dumps(payload))
        assert received.payloads == [expected, {"read_only": 1}]
        assert all(type(p) is dict for p in received.payloads)

    @contract_test()
    async def test_payload_is_captured_when_publish_is_called(self, contract: ContractKit) -> None:
        """Promise 2 and 8: `publish(qos=0)` returns before sending, yet sends the payload as it was.

        Mutating the dict (or a nested list) right after `publish` returns must not change what is
        delivered. If this fails, serialise in `publish` (not later in the sender).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("capture")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        payload: dict[str, Any] = {"n": 1, "items": [1]}
        await publisher.publish(topic, payload)
        payload["n"] = 2
        payload["items"].append(2)
        await contract.wait_for(received, 1)
        assert received.payloads == [{"n": 1, "items": [1]}]

    @contract_test()
    async def test_each_callback_gets_its_own_dict(self, contract: ContractKit) -> None:
        """Promise 2: every callback invocation gets its own fresh dict (nested values included).

        Two overlapping subscriptions on one connector both mutate what they receive; neither may see
        the other's changes. If this fails, decode (or deep-copy) once per callback, not once per
        message shared between callbacks.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("fresh", "x")
        seen: list[dict[str, Any]] = []
        objects: list[dict[str, Any]] = []

        async def mutate(_topic: str, payload: dict[str, Any]) -> None:
            seen.append(copy.deepcopy(payload))
            objects.append(payload)
            payload["mutated"] = True
            payload["nested"]["list"].append("mutated")

        await subscriber.subscribe(contract.topic("fresh", "#"), mutate)
        await subscriber.subscribe(topic, mutate)
        original = {"nested": {"list": [1]}}
        await publisher.publish(topic, original)
        await contract.eventually(lambda: len(seen) >= 2)
        assert seen == [original, original], "one callback saw another callback's changes"
        assert objects[0] is not objects[1]
        assert objects[0]["nested"] is not objects[1]["nested"]
