"""The socket paho reads from (private path), and paho's log noise about ordinary connection ends."""

from __future__ import annotations

__all__ = ["BufferedSocket", "demote_paho_noise", "paho_log"]

import logging
import ssl
from typing import Any, Final, Protocol

from . import _wire

_READ_SIZE: Final = 65536

# paho logs these at ERROR for every ordinary reset (a broker restart): they are not our errors.
_ORDINARY: Final = ("failed to receive on socket", "failed to send on socket", "timeout on socket")


class _Loss(Protocol):
    """What the socket tells its `Link` (see `Link.note_loss` and `Link.refuse`)."""

    def note_loss(self, reason: str) -> None: ...

    def refuse(self, disconnect: bytes, reason: str) -> None: ...


class BufferedSocket:
    """Wraps paho's socket so that its many tiny reads (1 byte of command, 1 per length byte, then the
    body) are served from one large ``recv``; ``pending()`` makes aiomqtt's reader callback keep calling
    paho until the buffer is empty (it does that for TLS sockets already). Everything else is delegated.

    Every chunk read goes through a `_wire.Framer` first: a packet announcing more than our Maximum
    Packet Size, or a broken remaining length, ends the stream (the link records why and sends
    DISCONNECT) before any of it is buffered. A reset or end of stream records its reason the same way;
    paho then sees an ordinary end of stream.
    """

    __slots__ = ("_buffer", "_dead", "_framer", "_link", "_pos", "_sock")

    def __init__(self, sock: Any, link: Any) -> None:
        self._sock = sock
        self._link: _Loss = link
        self._framer: _wire.Framer = link._framer
        self._buffer = b""
        self._pos = 0
        self._dead = False

    def recv(self, size: int) -> bytes:
        pos = self._pos
        buffer = self._buffer
        if pos >= len(buffer):
            if self._dead:
                return b""
            data = self._read()
            if len(data) <= size:
                return data
            self._buffer = buffer = data
            pos = 0
        end = pos + size
        if end >= len(buffer):
            self._buffer = b""
            self._pos = 0
            return buffer[pos:] if pos else buffer
        self._pos = end
        return buffer[pos:end]

    def _read(self) -> bytes:
        try:
            data: bytes = self._sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except OSError as exc:
            self._link.note_loss(f"connection reset ({exc.strerror or exc})")
            return self._end()
        if not data:
            self._link.note_loss("closed by the broker (end of stream, no DISCONNECT)")
            return self._end()
        try:
            self._framer.feed(data)
        except _wire.PacketTooLarge as exc:
            self._link.refuse(_wire.DISCONNECT_PACKET_TOO_LARGE, f"packet too large: {exc}")
        except _wire.MalformedPacket as exc:
            self._link.refuse(_wire.DISCONNECT_MALFORMED, f"malformed packet from the broker ({exc})")
        else:
            return data
        # The sound packets before the offending one are still handed over (a PUBACK, say); then the end.
        sound = data[: self._framer.error_at]
        self._end()
        return sound

    def _end(self) -> bytes:
        self._dead = True
        self._buffer = b""
        self._pos = 0
        return b""

    def pending(self) -> int:
        inner = self._sock.pending() if isinstance(self._sock, ssl.SSLSocket) else 0
        return len(self._buffer) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Demote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno >= logging.ERROR
            and isinstance(record.msg, str)
            and record.msg.startswith(_ORDINARY)
        ):
            record.levelno = logging.DEBUG
            record.levelname = logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def demote_paho_noise(logger: logging.Logger) -> None:
    """Make paho's ERROR lines about an ordinary connection end DEBUG lines on `logger` (the loss
    itself is reported once by the connector, with its reason).
    """
    if not any(isinstance(f, _Demote) for f in logger.filters):
        logger.addFilter(_Demote())


paho_log: Final = logging.getLogger("cascade.connectors.mqtt.paho")
"""The logger paho writes to (its ordinary-reset ERROR lines demoted to DEBUG)."""
demote_paho_noise(paho_log)
