"""A small synchronous paho-mqtt client for measuring what a broker does (the truth table, the cluster).

`ProbeClient` runs paho's network loop in its thread and records every message it receives, so a
measurement waits on a condition (`wait_for`) with a timeout instead of sleeping. `barrier()` is the
way to say "nothing more is coming": a QoS 1 message to the client's own private topic, published after
the thing being measured; brokers forward one connection's messages in order, so once it arrives, what
the broker routed before it has arrived too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["PROTOCOLS", "ConnectOutcome", "ProbeClient", "ProbeError", "Protocol", "Received", "raw_connect"]

Protocol = Literal["5", "3.1.1"]
PROTOCOLS: tuple[Protocol, ...] = ("5", "3.1.1")
_PAHO_PROTOCOL = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
_ids = itertools.count()
TIMEOUT = 10.0


class ProbeError(AssertionError):
    """A measurement could not be made (the broker did not answer in time): not a broker fact."""


def unique(prefix: str) -> str:
    """A name no other probe in this process (or another process) uses."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the client saw it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int


@dataclass(frozen=True, slots=True)
class ConnectOutcome:
    """How a broker answered a CONNECT: ``accepted``, ``refused`` (with its code), ``closed``, ``silent``."""

    kind: Literal["accepted", "refused", "closed", "silent"]
    code: int | None = None
    style: Literal["5", "3.1.1"] | None = None  # the CONNACK's own shape: with properties (5) or without

    def describe(self) -> str:
        """A short phrase for the truth table, e.g. ``refused: 3.1.1-style CONNACK return code 1``."""
        if self.kind == "accepted":
            return "accepted"
        if self.kind == "refused":
            shape = "MQTT 5 CONNACK reason code" if self.style == "5" else "3.1.1-style CONNACK return code"
            return f"refused: {shape} 0x{self.code or 0:02X}"
        if self.kind == "closed":
            return "refused: connection closed before any CONNACK"
        return "refused: no answer (no CONNACK, connection left open)"


def _field(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def raw_connect(
    host: str, port: int, protocol: Protocol, credentials: tuple[str, str] | None = None, timeout: float = 3.0
) -> ConnectOutcome:
    """Send one CONNECT of `protocol` over a raw socket and classify the broker's answer exactly.

    A raw socket rather than paho, because paho in MQTT 5 mode cannot show a 3.1.1-shaped CONNACK as it
    came. Blocks up to `timeout` seconds waiting for the answer.
    """
    flags = 0x02 | (0xC0 if credentials else 0)
    level = b"\x05" if protocol == "5" else b"\x04"
    variable = b"\x00\x04MQTT" + level + bytes([flags]) + b"\x00\x3c" + (b"\x00" if protocol == "5" else b"")
    payload = _field(unique("truth-connect").encode())
    if credentials:
        payload += _field(credentials[0].encode()) + _field(credentials[1].encode())
    body = variable + payload
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        data = b""
        try:
            while len(data) < 2 or len(data) < 2 + data[1]:
                chunk = sock.recv(64)
                if not chunk:
                    return ConnectOutcome("closed")
                data += chunk
        except TimeoutError:
            return ConnectOutcome("silent")
        except ConnectionResetError:
            return ConnectOutcome("closed")
        with contextlib.suppress(OSError):
            sock.sendall(b"\xe0\x00")
    if data[0] != 0x20:
        raise ProbeError(f"first packet from the broker was not a CONNACK: {data[:8].hex()}")
    code = data[3]
    style: Literal["5", "3.1.1"] = "5" if data[1] > 2 else "3.1.1"
    return ConnectOutcome("accepted" if code == 0 else "refused", code, style)


class ProbeClient:
    """One paho-mqtt client (MQTT 5 or 3.1.1) connected to a broker, recording what it receives.

    Every call that waits for the broker raises `ProbeError` after `TIMEOUT` seconds rather than hanging.
    """

    def __init__(
        self,
        host: str,
        port: int,
        protocol: Protocol,
        *,
        credentials: tuple[str, str] | None = None,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.protocol = protocol
        self.client_id = client_id or unique("truth")
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=_PAHO_PROTOCOL[protocol],
            reconnect_on_failure=False,
        )
        if credentials:
            self._client.username_pw_set(*credentials)
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=False)
        self._cond = threading.Condition()
        self.messages: list[Received] = []
        self._acks: dict[int, int] = {}  # mid -> reason code (0 on 3.1.1)
        self._subacks: dict[int, list[int]] = {}
        self._connack: int | None = None
        self.disconnected = False
        self._barrier_topic = f"cascade-truth/barrier/{self.client_id}"
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        self.wait_for(lambda: self._connack is not None or self.disconnected, "CONNACK")
        code = self.connack()
        if code != 0:
            self.close()
            raise ProbeError(f"CONNECT refused (code {code}, closed={self.disconnected})")
        self.subscribe(self._barrier_topic)

    def connack(self) -> int | None:
        """The CONNACK code received (None before it, or if the broker closed without one)."""
        with self._cond:
            return self._connack

    # -- paho callbacks (paho's thread) -----------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object
    ) -> None:
        with self._cond:
            self._connack = rc.value
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Received(message.topic, bytes(message.payload), bool(message.retain), message.qos)
            )
            self._cond.notify_all()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: object
    ) -> None:
        with self._cond:
            self._acks[mid] = rc.value
            self._cond.notify_all()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: list[ReasonCode], props: object
    ) -> None:
        with self._cond:
            self._subacks[mid] = [code.value for code in codes]
            self._cond.notify_all()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object
    ) -> None:
        with self._cond:
            self.disconnected = True
            self._cond.notify_all()

    # -- what a measurement uses ------------------------------------------------------------------

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        """Block until `condition()` holds (checked on every event); `ProbeError` naming `what` on timeout."""
        if not self.poll(condition, timeout):
            raise ProbeError(f"{self.protocol}: no {what} within {timeout} s")

    def poll(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until `condition()` holds or `timeout` seconds pass; whether it held."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def subscribe(self, *filters: str, qos: int = 1, wait: bool = True) -> list[int]:
        """SUBSCRIBE to `filters` in one packet; the granted codes (waits for SUBACK unless `wait=False`)."""
        result, mid = self._client.subscribe([(f, qos) for f in filters])
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise ProbeError(f"subscribe failed locally: {result}")
        if not wait:
            return []
        self.wait_for(lambda: mid in self._subacks or self.disconnected, f"SUBACK for {filters}")
        return self._subacks.get(mid, [])

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        expiry: int | None = None,
        wait: bool = True,
    ) -> int | None:
        """PUBLISH; at QoS 1 (with `wait`) the PUBACK reason code (0 on 3.1.1), None if the link closed."""
        properties = None
        if expiry is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = expiry
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if qos == 0 or not wait:
            return None
        mid = info.mid
        self.wait_for(lambda: mid in self._acks or self.disconnected, f"PUBACK for {topic}")
        return self._acks.get(mid)

    def barrier(self, via: ProbeClient | None = None) -> None:
        """Return once a QoS 1 message to this client's own topic came back (see the module doc).

        `via` publishes it (default: this client): pass the client whose earlier publishes are measured.
        """
        token = unique("barrier").encode()
        (via or self).publish(self._barrier_topic, token)
        self.wait_for(lambda: any(m.payload == token for m in self.messages), "barrier message")

    def received(self, topic: str | None = None) -> list[Received]:
        """What arrived so far (on `topic`), barrier messages left out."""
        with self._cond:
            return [
                m
                for m in self.messages
                if not m.topic.startswith("cascade-truth/barrier/") and (topic is None or m.topic == topic)
            ]

    def count(self, payload: bytes) -> int:
        """How many received messages carry exactly `payload`."""
        with self._cond:
            return sum(1 for m in self.messages if m.payload == payload)

    def abort(self) -> None:
        """Cut the TCP connection without DISCONNECT (the broker sees an abrupt loss)."""
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
        self.wait_for(lambda: self.disconnected, "disconnect after abort")
        self._client.loop_stop()

    def close(self) -> None:
        """DISCONNECT and stop the network thread."""
        if not self.disconnected:
            self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> ProbeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clear_retained(client: ProbeClient, topics: Sequence[str]) -> None:
    """Publish a zero-byte retained message on each topic (QoS 1, acknowledged)."""
    for topic in topics:
        client.publish(topic, b"", retain=True)
