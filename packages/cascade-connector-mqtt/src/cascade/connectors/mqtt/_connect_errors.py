"""Mapping a failed connection attempt to `ConnectionFailedError` with its `reason`."""

from __future__ import annotations

__all__ = ["VersionRefusedError", "connect_error"]

import socket
import ssl
from typing import TYPE_CHECKING, Final

import aiomqtt
from aiomqtt.exceptions import MqttCodeError, MqttConnectError
from cascade.connectors.protocol import ConnectionFailedError
from paho.mqtt.reasoncodes import ReasonCode

from ._hooks import ClosedBeforeConnack, ConnackTimeout
from ._reasons import reason_text

if TYPE_CHECKING:
    from ._link_types import LinkSettings

# CONNACK reason codes meaning "who you are is not accepted": MQTT 3.1.1 (4 bad user name or password,
# 5 not authorised) and MQTT 5 (0x86 bad user name or password, 0x87 not authorized, 0x8C bad
# authentication method).
_AUTH_CODES: Final = frozenset({4, 5, 0x86, 0x87, 0x8C})
# "Unacceptable protocol version": MQTT 3.1.1 return code 1, MQTT 5 reason code 0x84.
_VERSION_CODES: Final = frozenset({1, 0x84})


class VersionRefusedError(ConnectionFailedError):
    """A failed attempt that may mean "not this MQTT version": a CONNACK saying so, a close before any
    CONNACK, or no CONNACK in time. Negotiation (``protocol="auto"``) then tries the other version.
    """


def connect_error(exc: BaseException, settings: LinkSettings) -> ConnectionFailedError:
    """Map a failed connection attempt to `ConnectionFailedError` with a `reason` (docs/contract.md)."""
    where = f"{settings.hostname}:{settings.port}"
    if isinstance(exc, MqttConnectError):
        rc = exc.rc
        code = rc.value if isinstance(rc, ReasonCode) else int(rc or 0)
        if code in _AUTH_CODES:
            return ConnectionFailedError(
                "auth", f"the broker at {where} rejected the credentials: {reason_text(code)}"
            )
        if code in _VERSION_CODES:
            return VersionRefusedError(
                "refused", f"the broker at {where} refused the connection: {reason_text(0x84)}"
            )
        return ConnectionFailedError(
            "refused", f"the broker at {where} refused the connection: {reason_text(code)}"
        )
    if isinstance(exc, ClosedBeforeConnack):
        hint = " (is it a TLS port? set tls)" if settings.tls is None else " (is it a plain, non-TLS port?)"
        return VersionRefusedError(
            "refused", f"{where} closed the connection before answering the MQTT CONNECT{hint}"
        )
    cause: BaseException | None = exc
    if isinstance(exc, aiomqtt.MqttError) and not isinstance(exc, MqttCodeError):
        if isinstance(exc, ConnackTimeout):
            return VersionRefusedError(
                "timeout", f"no CONNACK from {where} within {settings.connect_timeout:g} s"
            )
        # aiomqtt re-raises socket errors as MqttError(str(exc)) "from None": the original is the context.
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            return ConnectionFailedError("refused", f"connecting to {where} failed: {exc}")
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause)
        return ConnectionFailedError("tls", f"TLS with {where} failed: {reason}")
    if isinstance(cause, socket.gaierror):
        return ConnectionFailedError("unreachable", f"cannot resolve {settings.hostname!r}: {cause.strerror}")
    if isinstance(cause, TimeoutError):
        if settings.tls is not None and "handshake" in str(cause):
            return ConnectionFailedError(
                "timeout", f"the TLS handshake with {where} took more than {settings.connect_timeout:g} s"
            )
        return ConnectionFailedError(
            "unreachable", f"nothing answered a TCP connect to {where} within {settings.connect_timeout:g} s"
        )
    if isinstance(cause, ConnectionRefusedError):
        return ConnectionFailedError("unreachable", f"nothing accepts TCP connections on {where}")
    if isinstance(cause, OSError):
        if settings.tls is not None and isinstance(cause, ConnectionResetError | BrokenPipeError):
            return ConnectionFailedError("tls", f"{where} closed the connection during the TLS handshake")
        return ConnectionFailedError("unreachable", f"cannot connect to {where}: {cause.strerror or cause}")
    return ConnectionFailedError("refused", f"connecting to {where} failed: {cause}")
