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

    One kernel read per `arm`: the reader callback arms the socket once per readiness event, so it
    hands over at most one chunk (`_READ_SIZE` bytes) before the event loop runs the dispatch loop
    again. Without it, a packet straddling the chunk's end pulled the next chunk in, and a flood kept
    the reader going (parsing, queueing, then dropping what queued beyond ``max_inbound``) while the
    callbacks and every other task waited. A read past the budget raises `BlockingIOError`, which paho
    treats as "no data yet" and resumes the packet from where it stopped.

    Every chunk read goes through a `_wire.Framer` first: a packet announcing more than our Maximum
    Packet Size, or a broken remaining length, ends the stream (the link records why and sends
    DISCONNECT) before any of it is buffered. A reset or end of stream records its reason the same way;
    paho then sees an ordinary end of stream.
    """

    __slots__ = ("_armed", "_buffer", "_dead", "_framer", "_link", "_pos", "_sock")

    def __init__(self, sock: Any, link: Any) -> None:
        self._sock = sock
        self._link: _Loss = link
        self._framer: _wire.Framer = link._framer
        self._buffer = b""
        self._pos = 0
        self._dead = False
        self._armed = True

    def arm(self) -> None:
        """Allow one more read from the kernel (the socket was reported readable)."""
        self._armed = True

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

    def fill(self) -> None:
        """Read one chunk into the buffer now if it is empty (spends the budget; see `arm`)."""
        if self._pos >= len(self._buffer) and not self._dead:
            try:
                data = self._read()
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            self._buffer = data
            self._pos = 0

    def take_packet(self) -> tuple[int, bytes] | None:
        """The next packet in the buffer if it is whole and a QoS 0 or QoS 1 PUBLISH or a PUBACK: (its
        first byte, its variable header and payload), removed from the buffer. None otherwise (paho
        reads it). Call only at a packet boundary.
        """
        buffer = self._buffer
        pos = self._pos
        size = len(buffer)
        if size - pos < 2:
            return None
        header = buffer[pos]
        if header & 0xF4 != 0x30 and header != 0x40:  # not a PUBLISH at QoS 0/1, not a PUBACK
            return None
        byte = buffer[pos + 1]
        if byte < 0x80:
            length, start = byte, pos + 2
        else:
            try:
                length, start = _wire.read_varint(buffer, pos + 1)
            except (IndexError, ValueError):
                return None
        end = start + length
        if end > size:
            return None
        if end == size:
            self._buffer = b""
            self._pos = 0
        else:
            self._pos = end
        return header, buffer[start:end]

    def _read(self) -> bytes:
        sock = self._sock
        if self._armed:
            self._armed = False
        elif not (isinstance(sock, ssl.SSLSocket) and sock.pending()):  # TLS: decrypted bytes are free
            raise BlockingIOError("read budget spent: the rest on the next readiness event")
        try:
            data: bytes = sock.recv(_READ_SIZE)
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
