"""`MqttSettings`: every setting of an `MqttConnector`, checked once, frozen, without the password in repr."""

from __future__ import annotations

__all__ = ["MqttSettings"]

import dataclasses
import math
import re
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cascade.connectors.protocol import status_topic
from cascade.connectors.protocol.core import (
    check_delay_range,
    check_int,
    check_seconds,
    default_source,
)

from ._link_types import DEFAULT_MAX_INBOUND_PACKET_SIZE

DEFAULT_PRESENCE_EXPIRY: Final = 86_400.0
"""Seconds a broker keeps a retained ``offline`` presence (MQTT 5 message expiry): 24 h."""
_MAX_EXPIRY: Final = 4_294_967_295  # MQTT 5 Message Expiry Interval: a four-byte integer of seconds
_MIN_PACKET: Final = 1024  # smallest inbound Maximum Packet Size we accept as a setting

PROTOCOLS: Final = ("auto", "5", "3.1.1")
"""The values of the `protocol` setting."""

SYNC_NAMESPACE: Final = "cascade/_sync/"
"""Where sync markers go when the broker refuses `$` topics (or on MQTT 3.1.1): reserved for the connector;
messages under it are never delivered to subscriptions."""


def _check_addresses(addresses: object) -> tuple[tuple[str, int], ...]:
    if isinstance(addresses, str | bytes) or not isinstance(addresses, Sequence) or not addresses:
        raise ValueError("addresses must be a non-empty list of (host, port) pairs")
    checked: list[tuple[str, int]] = []
    for item in addresses:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(f"addresses: each entry must be a (host, port) pair, not {item!r}")
        host, port = item
        if not isinstance(host, str) or not host:
            raise ValueError(f"addresses: the host of {item!r} must be a non-empty str")
        check_int("addresses: port", port, 1, 65535)
        checked.append((host, port))
    return tuple(checked)


def _check_sync_topic(topic: object) -> str:
    if not isinstance(topic, str) or not topic or any(c in topic for c in "+#\x00"):
        raise ValueError("sync_topic must be a non-empty topic name without + # or NUL (or None: automatic)")
    if len(topic.encode("utf-8")) > 65_535:
        raise ValueError("sync_topic is longer than an MQTT topic may be (65535 bytes)")
    return topic


@dataclass(frozen=True, slots=True, repr=False)
class MqttSettings:
    """The settings of one `MqttConnector` (``connector.settings``); see `MqttConnector` for each.

    Building one validates everything and fills the defaults: ``tls=True`` becomes a default
    `ssl.SSLContext` (system CAs, host name verified) and ``False`` becomes None; `source` defaults to
    ``{hostname}-{pid}-{random}`` and `client_id` to a name unique per instance. Raises `ValueError`
    naming the setting (or `TopicError` for a `source` that cannot be a topic level). The password
    never appears in `repr`. Use `replace` for a modified copy (checked again).
    """

    hostname: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    tls: ssl.SSLContext | None = None
    keepalive: int = 60
    source: str = ""
    max_buffered: int = 10_000
    max_inbound: int = 10_000
    max_inbound_packet_size: int = DEFAULT_MAX_INBOUND_PACKET_SIZE
    presence_expiry: float | None = DEFAULT_PRESENCE_EXPIRY
    reconnect_min_delay: float = 0.1
    reconnect_max_delay: float = 1.0
    connect_timeout: float = 5.0
    flush_timeout: float = 5.0
    protocol: str = "auto"
    """``"auto"`` (MQTT 5, falling back to 3.1.1 when the broker refuses it), ``"5"`` or ``"3.1.1"``."""
    addresses: tuple[tuple[str, int], ...] = ()
    """Every broker address, in the order they are tried; the first is (`hostname`, `port`)."""
    sync_topic: str = ""
    """The private topic of this client's sync markers (``$cascade/sync/{client}`` unless set)."""
    sync_fallback: str | None = field(default=None, init=False)
    """Where the markers go when the broker refuses `sync_topic` or on MQTT 3.1.1
    (``cascade/_sync/{client}``); None when `sync_topic` was set explicitly (no fallback)."""
    status_topic: str = field(init=False, compare=False)
    """``cascade/status/{source}``: where presence is published."""

    def __init__(
        self,
        hostname: str = "localhost",
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        keepalive: int = 60,
        source: str | None = None,
        max_buffered: int = 10_000,
        max_inbound: int = 10_000,
        max_inbound_packet_size: int = DEFAULT_MAX_INBOUND_PACKET_SIZE,
        presence_expiry: float | None = DEFAULT_PRESENCE_EXPIRY,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 1.0,
        connect_timeout: float = 5.0,
        flush_timeout: float = 5.0,
        protocol: str = "auto",
        addresses: Sequence[tuple[str, int]] | None = None,
        sync_topic: str | None = None,
    ) -> None:
        if not isinstance(hostname, str) or not hostname:
            raise ValueError("hostname must be a non-empty str")
        check_int("port", port, 1, 65535)
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of 'auto', '5' or '3.1.1', not {protocol!r}")
        if addresses is None:
            hosts: tuple[tuple[str, int], ...] = ((hostname, port),)
        else:
            hosts = _check_addresses(addresses)
            if (hostname, port) not in (("localhost", 1883), hosts[0]):
                raise ValueError("give either hostname/port or addresses (the first address), not both")
            hostname, port = hosts[0]
        check_int("keepalive", keepalive, 0, 65535)
        check_int("max_buffered", max_buffered, 1)
        check_int("max_inbound", max_inbound, 1)
        check_int("max_inbound_packet_size", max_inbound_packet_size, _MIN_PACKET, 268_435_455)
        if presence_expiry is not None:
            presence_expiry = check_seconds("presence_expiry", presence_expiry, positive=True)
            if presence_expiry > _MAX_EXPIRY:
                raise ValueError(f"presence_expiry must be at most {_MAX_EXPIRY} s (or None: never)")
        low, high = check_delay_range(reconnect_min_delay, reconnect_max_delay)
        connect = check_seconds("connect_timeout", connect_timeout, positive=True)
        flush = check_seconds("flush_timeout", flush_timeout)
        if username is not None and not isinstance(username, str):
            raise ValueError("username must be a str or None")
        if password is not None:
            if not isinstance(password, str):
                raise ValueError("password must be a str or None")
            if username is None:
                raise ValueError("a password needs a username")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise ValueError("client_id must be a non-empty str or None")
        if tls is True:
            tls = ssl.create_default_context()
        elif tls is False:
            tls = None
        if tls is not None and not isinstance(tls, ssl.SSLContext):
            raise ValueError(f"tls must be an ssl.SSLContext, True or None, not {type(tls).__name__}")
        token = secrets.token_hex(4)
        if source is None:
            source = default_source(token)
        topic = status_topic(source)  # validates source (TopicError)
        if client_id is None:
            client_id = f"cascade-{source}-{token}" if not source.endswith(token) else f"cascade-{source}"
        sync_id = client_id if re.fullmatch(r"[^/+#\x00]{1,200}", client_id) else token
        if sync_topic is None:
            marker_topic, fallback = f"$cascade/sync/{sync_id}", f"{SYNC_NAMESPACE}{sync_id}"
        else:
            marker_topic, fallback = _check_sync_topic(sync_topic), None
        values: dict[str, Any] = {
            "hostname": hostname,
            "port": port,
            "username": username,
            "password": password,
            "client_id": client_id,
            "tls": tls,
            "keepalive": keepalive,
            "source": source,
            "max_buffered": max_buffered,
            "max_inbound": max_inbound,
            "max_inbound_packet_size": max_inbound_packet_size,
            "presence_expiry": presence_expiry,
            "reconnect_min_delay": low,
            "reconnect_max_delay": high,
            "connect_timeout": connect,
            "flush_timeout": flush,
            "protocol": protocol,
            "addresses": hosts,
            "sync_topic": marker_topic,
            "sync_fallback": fallback,
            "status_topic": topic,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def presence_expiry_interval(self) -> int | None:
        """`presence_expiry` as the MQTT 5 Message Expiry Interval (whole seconds, at least 1), or None."""
        expiry = self.presence_expiry
        return None if expiry is None else max(1, math.ceil(expiry))

    def replace(self, **changes: Any) -> MqttSettings:
        """A copy with `changes` applied (validated again; `source`/`client_id` kept unless given)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        if self.sync_fallback is not None:
            current["sync_topic"] = None  # automatic: derived from the client id again
        if "hostname" in changes or "port" in changes:
            current["addresses"] = None
        current.update(changes)
        return MqttSettings(**current)

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username is not None else ""
        secret = ", password=<hidden>" if self.password is not None else ""
        return (
            f"MqttSettings({self.hostname!r}, {self.port}{user}{secret}, tls={self.tls is not None}, "
            f"client_id={self.client_id!r}, source={self.source!r}, keepalive={self.keepalive}, "
            f"max_buffered={self.max_buffered}, max_inbound={self.max_inbound}, "
            f"max_inbound_packet_size={self.max_inbound_packet_size}, "
            f"presence_expiry={self.presence_expiry!r}, reconnect_min_delay={self.reconnect_min_delay:g}, "
            f"reconnect_max_delay={self.reconnect_max_delay:g}, connect_timeout={self.connect_timeout:g}, "
            f"flush_timeout={self.flush_timeout:g}, protocol={self.protocol!r}{self._more_addresses()})"
        )

    def _more_addresses(self) -> str:
        if len(self.addresses) < 2:
            return ""
        return ", addresses=[" + ", ".join(f"{h}:{p}" for h, p in self.addresses) + "]"
