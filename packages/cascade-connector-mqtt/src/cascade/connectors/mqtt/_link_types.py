"""What the connector sees of the transport: the settings of one connection and the callbacks a `Link`
makes into its owner.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_INBOUND_PACKET_SIZE", "LinkOwner", "LinkSettings", "MqttVersion", "Sent"]

import enum
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from ._client import Link

DEFAULT_MAX_INBOUND_PACKET_SIZE: Final = 1_048_576
"""The Maximum Packet Size we announce in CONNECT by default (1 MiB): a broker must not send a larger
packet (it drops such a message for this client); a broker that does anyway loses the connection."""


class MqttVersion(enum.Enum):
    """The MQTT protocol version of one connection."""

    V5 = "5"
    V311 = "3.1.1"


class Sent(Protocol):
    """What `Link.send_qos0` returns (paho's ``MQTTMessageInfo``)."""

    def is_published(self) -> bool:
        """Whether paho wrote the batch to the socket."""
        ...


class LinkOwner(Protocol):
    """The callbacks a `Link` makes into its owner (all on the event loop thread, none may raise).

    Optional, looked up when present: ``_link_malformed(link, detail)``, an inbound message dropped
    because its topic is unacceptable (count it as malformed).
    """

    def _link_message(
        self, link: Link, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int], mid: int
    ) -> None:
        """An inbound PUBLISH. `mid` 0: nothing to acknowledge; else the owner must call
        ``link.ack(mid)`` once the message's callbacks ran (QoS 1, acknowledged manually).
        """
        ...

    def _link_published(self, link: Link, mid: int, reason: int) -> None:
        """From paho's on_publish: a QoS 0 batch was written (mid 0), or a QoS 1 PUBACK arrived."""
        ...

    def _link_lost(self, link: Link) -> None:
        """The connection is gone (any cause, including our own DISCONNECT); ``link.loss_reason`` says why."""
        ...


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything needed to open one connection. `password` never leaves this object (no repr).

    `max_inbound_packet_size` (bytes, whole packet) is announced in CONNECT (MQTT 5) and enforced on
    reading. `receive_maximum` is announced in CONNECT (MQTT 5): the broker sends at most that many QoS 1
    messages we have not acknowledged yet (the owner acknowledges with `Link.ack`). `will_expiry`:
    seconds, the last will's MQTT 5 message expiry (None: none). `protocol`: the MQTT version spoken on
    this connection.
    """

    hostname: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None
    keepalive: int
    connect_timeout: float
    will_topic: str
    will_payload: bytes
    max_inbound_packet_size: int = DEFAULT_MAX_INBOUND_PACKET_SIZE
    receive_maximum: int = 65535
    will_expiry: int | None = None
    protocol: MqttVersion = MqttVersion.V5

    def __repr__(self) -> str:
        return (
            f"LinkSettings(hostname={self.hostname!r}, port={self.port}, client_id={self.client_id!r}, "
            f"username={self.username!r}, tls={self.tls is not None}, protocol={self.protocol.value!r})"
        )
