"""Making the driver of one connection: aiomqtt with the private hooks, or paho's public API."""

from __future__ import annotations

__all__ = ["Driver", "make_driver", "send_puback"]

import socket

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from . import _hooks
from ._callbacks import LinkEvents
from ._hooks import AiomqttDriver
from ._link_types import LinkSettings, MqttVersion
from ._paho_driver import PahoDriver
from ._socket import paho_log

Driver = AiomqttDriver | PahoDriver


def send_puback(driver: Driver, mid: int) -> MQTTErrorCode:
    """Queue the PUBACK of inbound QoS 1 message `mid` (paho writes it when the socket takes it).

    Both drivers leave QoS 1 acknowledgements to the `Link` owner (docs/contract.md, promise 13):
    `PahoDriver`'s client acknowledges manually (``manual_ack``, answered through paho's public
    ``ack``); `AiomqttDriver` reads PUBLISH packets itself and answers through the private hook.
    Call it on the event loop thread, where both drivers run paho.
    """
    if isinstance(driver, PahoDriver):
        return driver.paho.ack(mid, 1)
    return _hooks.send_puback(driver.paho, mid)


def make_driver(events: LinkEvents, settings: LinkSettings, *, private: bool) -> Driver:
    """A driver for `settings` reporting to `events`: `AiomqttDriver` if `private`, else `PahoDriver`.

    Both speak `settings.protocol`; on MQTT 5 they announce `settings.max_inbound_packet_size` as our
    Maximum Packet Size in CONNECT (MQTT 3.1.1 has no properties: the limit is only enforced on reading).
    """
    tls = settings.tls
    v5 = settings.protocol is MqttVersion.V5
    connect_props: Properties | None = None
    will_props: Properties | None = None
    if v5:
        connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect_props.MaximumPacketSize = settings.max_inbound_packet_size
        connect_props.ReceiveMaximum = settings.receive_maximum
        if settings.will_expiry is not None:
            will_props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
            will_props.MessageExpiryInterval = settings.will_expiry
    # A context that does not check host names must not have paho check them either.
    insecure = True if tls is not None and not tls.check_hostname else None
    if not private:
        return PahoDriver(
            events,
            hostname=settings.hostname,
            port=settings.port,
            identifier=settings.client_id,
            username=settings.username,
            password=settings.password,
            will=(settings.will_topic, settings.will_payload, will_props),
            keepalive=settings.keepalive,
            timeout=settings.connect_timeout,
            tls_context=tls,
            tls_insecure=insecure,
            logger=paho_log,
            properties=connect_props,
            v5=v5,
        )
    driver = AiomqttDriver(
        events,
        hostname=settings.hostname,
        port=settings.port,
        username=settings.username,
        password=settings.password,
        identifier=settings.client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=aiomqtt.Will(
            settings.will_topic, settings.will_payload, qos=1, retain=True, properties=will_props
        ),
        keepalive=settings.keepalive,
        timeout=settings.connect_timeout,
        tls_context=tls,
        tls_insecure=insecure,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        logger=paho_log,
        # Our own bound on QoS 1 in flight is the only one: paho must never hold messages back.
        max_inflight_messages=0,
        properties=connect_props,
    )
    driver.paho.connect_timeout = settings.connect_timeout
    return driver
