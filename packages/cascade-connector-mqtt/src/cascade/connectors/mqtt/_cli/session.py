"""Connecting for one CLI command: failures become `CliError`s with the right exit code."""

from __future__ import annotations

__all__ = [
    "Session",
    "ConnectorFactory",
    "acked",
    "bounded",
    "reason_code",
    "command_line_hint",
    "protocol_of",
    "over",
]

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from cascade.connectors.protocol import ConnectionFailedError, Connector, ConnectorError

from .exitcodes import CliError, ExitCode

ConnectorFactory = Callable[[], Connector]

T = TypeVar("T")

_log = logging.getLogger("cascade.connectors.mqtt.cli")

_REASONS: dict[str, tuple[ExitCode, str]] = {
    "unreachable": (ExitCode.UNREACHABLE, "cannot reach the broker: {detail}"),
    "timeout": (ExitCode.UNREACHABLE, "the broker did not answer in time: {detail}"),
    "auth": (ExitCode.AUTH, "{detail} (check the user name and password)"),
    "tls": (ExitCode.TLS, "TLS failed: {detail} (for a private CA add ?ca_file=PATH to the URL)"),
    "refused": (ExitCode.BROKER, "the broker refused the connection: {detail}"),
}

# The connector's hints speak its API ("set tls"); on the command line the URL's scheme says it.
_HINTS = {
    "(is it a TLS port? set tls)": "(is it a TLS port? use mqtts://)",
    "(is it a plain, non-TLS port?)": "(is it a plain, non-TLS port? use mqtt://)",
}


def protocol_of(connector: Connector) -> str | None:
    """The MQTT version `connector` negotiated (``"5"``, ``"3.1.1"``); None if it does not say."""
    version = getattr(connector, "protocol_version", None)
    return version if isinstance(version, str) else None


def over(url: str, connector: Connector) -> str:
    """``URL over MQTT 5`` (just the masked `url` for a connector that does not say its version)."""
    version = protocol_of(connector)
    return url if version is None else f"{url} over MQTT {version}"


def command_line_hint(detail: str) -> str:
    """`detail` (a connector's error text) with its hints in command-line terms."""
    for api, cli in _HINTS.items():
        detail = detail.replace(api, cli)
    return detail


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
            raise CliError(code, text.format(detail=command_line_hint(exc.detail))) from exc
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


async def acked(operation: Awaitable[T], *, within: float, url: str) -> T:
    """Await a command that publishes at QoS 1, within `within` seconds.

    Raises `CliError`: `ExitCode.UNREACHABLE` when no acknowledgement came in time, `BROKER` when the
    connector refused.
    """
    try:
        async with asyncio.timeout(within):
            return await operation
    except TimeoutError as exc:
        raise CliError(
            ExitCode.UNREACHABLE,
            f"the broker at {url} did not acknowledge within {within:g} s "
            "(the command may not have been applied)",
        ) from exc
    except ConnectorError as exc:
        raise CliError(ExitCode.BROKER, f"publishing to {url} failed: {exc}") from exc


async def bounded(operation: Awaitable[T], *, within: float, url: str) -> T:
    """Await a read (subscriptions) within `within` seconds; failures become `CliError`s."""
    try:
        async with asyncio.timeout(within):
            return await operation
    except TimeoutError as exc:
        raise CliError(
            ExitCode.UNREACHABLE, f"the broker at {url} did not answer within {within:g} s"
        ) from exc
    except ConnectorError as exc:
        raise CliError(ExitCode.BROKER, f"the broker at {url} refused: {exc}") from exc
