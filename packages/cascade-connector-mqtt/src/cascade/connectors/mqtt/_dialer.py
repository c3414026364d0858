"""Opening a connection: which address, which MQTT version (negotiation), and the error naming each try.

One `Dialer` per connector. `open()` makes ONE pass over the broker addresses, starting at the one it
last connected to (so a blip reconnects to the same node, a dead node costs one failed try), and for
each address tries the MQTT versions the `protocol` setting allows: ``"auto"`` tries the version it last
connected with first (MQTT 5 before any), then the other one when the broker refused the first in a way
that may mean "not this version" (`VersionRefusedError`: CONNACK 0x84 or 3.1.1 return code 1, a close
before CONNACK, no CONNACK in time). The backoff between passes is the caller's.
"""

from __future__ import annotations

__all__ = ["Dialer"]

import logging
from typing import Final

from cascade.connectors.protocol import ConnectionFailedError

from ._client import Link, LinkOwner, LinkSettings, MqttVersion
from ._connect_errors import VersionRefusedError
from ._settings import MqttSettings

_log = logging.getLogger("cascade.connectors.mqtt")

_FORCED: Final = {"5": MqttVersion.V5, "3.1.1": MqttVersion.V311}


class Dialer:
    """Opens the connections of one connector (see the module doc).

    `version` is the MQTT version of the last successful connection (None before the first);
    `address` the (host, port) it went to.
    """

    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._index = 0
        self.version: MqttVersion | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The address connected to last (the first address before any connection)."""
        return self._settings.addresses[self._index]

    def _versions(self) -> tuple[MqttVersion, ...]:
        forced = _FORCED.get(self._settings.protocol)
        if forced is not None:
            return (forced,)
        if self.version is MqttVersion.V311:
            return (MqttVersion.V311, MqttVersion.V5)
        return (MqttVersion.V5, MqttVersion.V311)

    async def open(self, owner: LinkOwner, will_payload: bytes) -> Link:
        """One pass over the addresses; returns the first connection a broker accepts.

        Raises `ConnectionFailedError`: with one address, that address's error; with several, one whose
        message names every address with its own reason (its `reason` is the first address's).
        """
        addresses = self._settings.addresses
        failures: list[tuple[str, int, ConnectionFailedError]] = []
        for step in range(len(addresses)):
            index = (self._index + step) % len(addresses)
            host, port = addresses[index]
            try:
                link = await self._negotiate(host, port, owner, will_payload)
            except ConnectionFailedError as exc:
                failures.append((host, port, exc))
                continue
            self._index = index
            return link
        if len(failures) == 1:
            raise failures[0][2]
        detail = "; ".join(f"{host}:{port}: ({exc.reason}) {exc.detail}" for host, port, exc in failures)
        raise ConnectionFailedError(
            failures[0][2].reason, f"none of the {len(failures)} broker addresses accepted: {detail}"
        )

    async def _negotiate(self, host: str, port: int, owner: LinkOwner, will_payload: bytes) -> Link:
        versions = self._versions()
        refused: list[tuple[MqttVersion, VersionRefusedError]] = []
        for version in versions:
            try:
                link = await Link.open(self._link_settings(host, port, version, will_payload), owner)
            except VersionRefusedError as exc:
                if len(versions) == 1:
                    hint = f"{exc.detail}; the broker may not speak MQTT {version.value}: try protocol='auto'"
                    raise ConnectionFailedError(exc.reason, hint) from exc
                refused.append((version, exc))
                continue
            self._chose(version, host, port, refused)
            return link
        detail = "; ".join(f"MQTT {version.value}: {exc.detail}" for version, exc in refused)
        raise ConnectionFailedError(
            refused[-1][1].reason, f"{host}:{port} speaks neither MQTT 5 nor MQTT 3.1.1: {detail}"
        )

    def _chose(
        self,
        version: MqttVersion,
        host: str,
        port: int,
        refused: list[tuple[MqttVersion, VersionRefusedError]],
    ) -> None:
        if version is self.version:
            return
        if self._settings.protocol == "auto":
            why = f" (MQTT {refused[0][0].value} refused: {refused[0][1].detail})" if refused else ""
            _log.info("speaking MQTT %s with %s:%s%s", version.value, host, port, why)
        self.version = version

    def _link_settings(self, host: str, port: int, version: MqttVersion, will_payload: bytes) -> LinkSettings:
        s = self._settings
        return LinkSettings(
            hostname=host,
            port=port,
            client_id=s.client_id,
            username=s.username,
            password=s.password,
            tls=s.tls,
            keepalive=s.keepalive,
            connect_timeout=s.connect_timeout,
            will_topic=s.status_topic,
            will_payload=will_payload,
            max_inbound_packet_size=s.max_inbound_packet_size,
            receive_maximum=min(s.max_inbound, 65535),
            will_expiry=s.presence_expiry_interval,
            protocol=version,
        )
