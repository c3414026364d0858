"""Presence: the default source name and the online/offline `StatusMessage` bytes for a source."""

from __future__ import annotations

__all__ = ["Presence", "default_source", "host_segment"]

import os
import secrets
import socket

from ..codec import encode_payload
from ..schemas import PresenceStatus, StatusMessage, utc_now_iso
from ..topics import status_topic


def _unsafe_in_level(ch: str) -> bool:
    code = ord(ch)
    return (
        ch in "/+#"
        or ch.isspace()
        or code <= 0x1F
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or (code & 0xFFFE) == 0xFFFE
    )


def host_segment(name: str | None = None) -> str:
    """`name` (default: this machine's host name) made safe as one topic level.

    ``/``, ``+``, ``#``, whitespace and every character the topic grammar refuses (controls, lone
    surrogates, non-characters) become ``_``; an empty name becomes ``host``.
    """
    text = socket.gethostname() if name is None else name
    return "".join("_" if _unsafe_in_level(ch) else ch for ch in text) or "host"


def default_source(token: str | None = None) -> str:
    """``{hostname}-{pid}-{random}``: unique per call (8 hex digits of randomness unless `token` given)."""
    return f"{host_segment()}-{os.getpid()}-{token if token is not None else secrets.token_hex(4)}"


class Presence:
    """The presence of one `source`: its topic and the encoded online / offline payloads.

    Raises `TopicError` if `source` cannot be one topic level. Each payload carries a time, `ts`
    (ISO 8601 UTC, default now). The rule both connectors follow (docs/contract.md, promise 10): the
    ``online`` of a connection and that connection's last will carry the SAME time, the time the
    connection was made, so the will is never earlier than the online it ends (an observer wanting
    when a worker vanished uses the will's arrival time); a graceful ``offline`` carries the time of
    the disconnect.
    """

    __slots__ = ("source", "topic")

    def __init__(self, source: str) -> None:
        self.topic = status_topic(source)  # validates the source
        self.source = source

    def online(self, ts: str | None = None) -> bytes:
        """The retained ``online`` `StatusMessage`, encoded (`ts`: default now)."""
        return self._encode("online", ts)

    def offline(self, ts: str | None = None) -> bytes:
        """The retained ``offline`` `StatusMessage` (graceful stop or last will), encoded."""
        return self._encode("offline", ts)

    def _encode(self, status: PresenceStatus, ts: str | None) -> bytes:
        message = StatusMessage(status=status, source=self.source, ts=ts if ts is not None else utc_now_iso())
        return encode_payload(message.to_dict())

    def __repr__(self) -> str:
        return f"Presence({self.source!r})"
