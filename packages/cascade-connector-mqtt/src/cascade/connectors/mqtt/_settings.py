"""`MqttSettings`: every setting of an `MqttConnector`, checked once, frozen, without the password in repr."""

from __future__ import annotations

__all__ = ["MqttSettings"]

import dataclasses
import re
import secrets
import ssl
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
    status_topic: str = field(init=False, compare=False)
    """``cascade/status/{source}``: where presence is published."""
    sync_topic: str = field(init=False, compare=False)
    """The private topic of this client's sync markers (``$cascade/sync/...``)."""

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
    ) -> None:
        if not isinstance(hostname, str) or not hostname:
            raise ValueError("hostname must be a non-empty str")
        check_int("port", port, 1, 65535)
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
            "status_topic": topic,
            "sync_topic": f"$cascade/sync/{sync_id}",
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> MqttSettings:
        """A copy with `changes` applied (validated again; `source`/`client_id` kept unless given)."""
        current = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init
        }
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
            f"flush_timeout={self.flush_timeout:g})"
        )
