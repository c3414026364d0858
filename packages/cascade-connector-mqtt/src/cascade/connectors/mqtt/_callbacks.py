"""What a driver reports to its `Link` (`LinkEvents`), and paho's public callbacks routed to it
(`PahoCallbacks`), written once for both drivers (`_hooks.AiomqttDriver`, `_paho_driver.PahoDriver`).
Public paho API only.
"""

from __future__ import annotations

__all__ = ["LinkEvents", "PahoCallbacks"]

from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


class LinkEvents(Protocol):
    """What a driver reports to its `Link` (on the event loop thread; none may raise)."""

    def _on_connack(self, properties: Properties | None) -> None: ...

    def _on_disconnect(
        self, reason: ReasonCode, properties: Properties | None, from_server: bool
    ) -> None: ...

    def _resolve(self, mid: int, code: int) -> None: ...

    def _message(self, message: paho.MQTTMessage) -> None: ...

    def _published(self, mid: int, reason_code: ReasonCode) -> None: ...


class PahoCallbacks:
    """paho's subscribe, unsubscribe, message and publish callbacks routed to the Link's events, written
    once for both drivers (`AiomqttDriver` overrides aiomqtt's ``_on_*`` with them; `PahoDriver` hands
    them to paho directly). The class using it sets ``self._events``.
    """

    _events: LinkEvents

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None = None,
    ) -> None:
        self._events._resolve(mid, reason_codes[0].value if reason_codes else 0x80)

    def _on_unsubscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None = None,
    ) -> None:
        self._events._resolve(mid, reason_codes[0].value if reason_codes else 0)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._events._message(message)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        self._events._published(mid, reason_code)
