"""Connecting for one CLI command: failures become `CliError`s with the right exit code."""

from __future__ import annotations

__all__ = ["Session", "ConnectorFactory", "publish_acked", "reason_code"]

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from cascade.connectors.protocol import ConnectionFailedError, Connector, ConnectorError

from .exitcodes import CliError, ExitCode

ConnectorFactory = Callable[[], Connector]

_log = logging.getLogger("cascade.connectors.mqtt.cli")

_REASONS: dict[str, tuple[ExitCode, str]] = {
    "unreachable": (ExitCode.UNREACHABLE, "cannot reach the broker: {detail}"),
    "timeout": (ExitCode.UNREACHABLE, "the broker did not answer in time: {detail}"),
    "auth": (ExitCode.AUTH, "{detail} (check the user name and password)"),
    "tls": (ExitCode.TLS, "TLS failed: {detail} (for a private CA add ?ca_file=PATH to the URL)"),
    "refused": (ExitCode.BROKER, "the broker refused the connection: {detail}"),
}


def reason_code(reason: str) -> ExitCode:
    """The exit code for a `ConnectionFailedError.reason`."""
    return _REASONS.get(reason, (ExitCode.BROKER, ""))[0]


class Session:
    """``async with Session(factory, url, timeout) as connector``: connect within `timeout` seconds.

    `url` is only shown in messages (already masked). Raises `CliError`: `ExitCode.UNREACHABLE` (no
    answer in time, or unreachable), `AUTH`, `TLS` or `BROKER`. Disconnects on exit (bounded by the
    same timeout).
    """

    def __init__(self, factory: ConnectorFactory, url: str, timeout: float) -> None:
        self._factory = factory
        self._url = url
        self._timeout = timeout
        self._connector: Connector | None = None

    async def __aenter__(self) -> Connector:
        connector = self._factory()
        self._connector = connector
        try:
            async with asyncio.timeout(self._timeout):
                await connector.connect()
        except TimeoutError as exc:
            await self._close()
            raise CliError(
                ExitCode.UNREACHABLE, f"no answer from the broker at {self._url} within {self._timeout:g} s"
            ) from exc
        except ConnectionFailedError as exc:
            await self._close()
            code, text = _REASONS.get(exc.reason, (ExitCode.BROKER, "connecting failed: {detail}"))
            raise CliError(code, text.format(detail=exc.detail)) from exc
        except ConnectorError as exc:
            await self._close()
            raise CliError(ExitCode.BROKER, f"connecting to {self._url} failed: {exc}") from exc
        except asyncio.CancelledError:  # Ctrl-C while connecting: leave nothing half-open behind
            await self._close()
            raise
        return connector

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        connector, self._connector = self._connector, None
        if connector is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await connector.disconnect()
        except (TimeoutError, ConnectorError) as exc:
            _log.warning("disconnecting from %s failed: %s", self._url, exc)


async def publish_acked(
    connector: Connector, topic: str, payload: Mapping[str, Any], *, ack_timeout: float, url: str
) -> None:
    """Publish retained at qos 1 and return once the broker acknowledged (within `timeout` s).

    Raises `CliError` (`ExitCode.UNREACHABLE` when no acknowledgement came in time).
    """
    try:
        async with asyncio.timeout(ack_timeout):
            await connector.publish(topic, payload, qos=1, retain=True)
    except TimeoutError as exc:
        raise CliError(
            ExitCode.UNREACHABLE,
            f"the broker at {url} did not acknowledge within {ack_timeout:g} s "
            "(the command may not have been applied)",
        ) from exc
    except ConnectorError as exc:
        raise CliError(ExitCode.BROKER, f"publishing to {url} failed: {exc}") from exc
