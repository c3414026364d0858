"""The outbound pipeline of one MQTT session: pure logic over a `Wire` (the transport's send side).

Messages accepted by ``publish`` wait in the core's `OutboundBuffer` (``max_buffered``, the QoS 0
overflow policy, exact counters). A ``call_soon`` callback (not a task, not one per message) hands them
to the wire: QoS 0 in batches (one socket write each), with at most `MAX_UNWRITTEN` batches not yet
written; QoS 1 one by one, at most `max_inflight` awaiting PUBACK. Control messages (presence, sync
markers, confirms) go first.

QoS 0 has no acknowledgement, but a broker handles a client's packets in order, so the PUBACK of any
QoS 1 message sent after a batch proves the broker received the batch. Batches stay *unconfirmed* until
such a PUBACK (a small QoS 1 "confirm" publish is sent when none is under way) and go back to the front
of the queue if the connection dies first: messages published after the broker died but before the
loss was noticed are sent again rather than lost. That memory is bounded (`UNCONFIRMED_BYTES`).
"""

from __future__ import annotations

__all__ = ["Ack", "AckKind", "Outbound", "Wire"]

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from cascade.connectors.protocol import ConnectorError, ConnectorStats, PayloadError
from cascade.connectors.protocol.core import OutboundBuffer, Outgoing, unsent_at_disconnect

from ._outbound_types import Ack, AckKind, Entry, Unconfirmed, Wire, Written

MAX_INFLIGHT: Final = 20  # QoS 1 messages awaiting PUBACK (also capped by the broker's Receive Maximum)
MAX_UNWRITTEN: Final = 8  # QoS 0 batches handed to the wire but not yet written to the socket
UNCONFIRMED_BYTES: Final = 4 * 1024 * 1024  # QoS 0 bytes kept for a resend until the broker has them
BATCH_BYTES: Final = 64 * 1024  # a batch closes once it holds this many bytes of topics and payloads


class Outbound:
    """The pipeline of one session (created at ``connect``, ended at ``disconnect``).

    `wire` is the current connection (None during an outage). `flush_handle` is the scheduled flush,
    if any; `confirm` the confirm publish under way, if any. `on_refused_marker(reason, topic)` is told
    when the broker refuses a sync marker. `sync_topic` is where sync markers and confirms go (the
    registry may move it when the broker refuses it).
    """

    def __init__(
        self,
        buffer: OutboundBuffer[Ack],
        sync_topic: str,
        log: logging.Logger,
        on_refused_marker: Callable[[int, str], None],
        reason_text: Callable[[int], str],
    ) -> None:
        self.buffer = buffer
        self.queue = buffer.queue
        self.control: deque[Entry] = deque()
        self.inflight: dict[int, Entry] = {}
        self.unwritten: deque[Written] = deque()
        self.unconfirmed: deque[Unconfirmed] = deque()
        self.unconfirmed_bytes = 0
        self.sent = 0  # send positions: every QoS 0 batch and QoS 1 message handed over takes the next
        self.confirm: Ack | None = None
        self.max_inflight = MAX_INFLIGHT
        self.flush_handle: asyncio.Handle | None = None
        self.idle_waiter: asyncio.Future[None] | None = None
        self.wire: Wire | None = None
        # The broker's Maximum Packet Size, from the latest CONNACK (kept during an outage), and the
        # transport's exact check against it; None: no limit known.
        self.max_packet_size: int | None = None
        self.fits: Callable[[str, bytes, int], bool] | None = None
        # Poison detection: ids of the messages in flight when the broker closed a short session.
        # While any is queued, they are sent ONE at a time (each confirmed before the next), so a
        # second close tells exactly which one the broker refuses (`quarantine`).
        self.suspects: set[int] = set()
        # Callers' messages written to a connection that was lost before the broker confirmed them,
        # queued again (by id; the entry itself keeps the id unique): if the session ends before they
        # are written again, `finish` counts them as unconfirmed, never as dropped (they may well
        # have arrived). Emptied as they leave the queue again.
        self.rewritten: dict[int, Entry] = {}
        self.sync_topic = sync_topic
        self._log = log
        self._on_refused_marker = on_refused_marker
        self._reason_text = reason_text

    # ------------------------------------------------------------------ connection changes

    def attach(
        self,
        wire: Wire,
        receive_maximum: int,
        max_packet_size: int | None = None,
        fits: Callable[[str, bytes, int], bool] | None = None,
    ) -> None:
        """A new connection: messages flow to `wire` again (`fits`: the exact check against the
        broker's `max_packet_size`, if it announced one).
        """
        self.wire = wire
        self.max_packet_size = max_packet_size
        self.fits = fits if max_packet_size is not None else None
        self.max_inflight = max(1, min(MAX_INFLIGHT, receive_maximum))
        self.buffer.new_episode()

    def lost(self, requeue: bool = True) -> None:
        """The connection is gone: what the broker may not have goes back to the front of the queue.

        QoS 1 without PUBACK and QoS 0 batches not confirmed return in the order they were sent;
        presence, sync markers and confirms are sent afresh on the next connection. With
        ``requeue=False`` (the session is ending: no next connection) they stay where they are, so
        `finish` counts them as written but unconfirmed, not as never sent.
        """
        self.wire = None
        if not requeue:
            return
        back: list[tuple[int, list[Entry]]] = [(u.sent, u.batch) for u in self.unconfirmed]
        rewritten = self.rewritten
        for u in self.unconfirmed:
            if u.written.is_published():
                for entry in u.batch:
                    rewritten[id(entry)] = entry
        for entry in self.inflight.values():
            ack = entry.ack
            if ack is not None and ack.kind is AckKind.USER:
                back.append((ack.sent, [entry]))
                rewritten[id(entry)] = entry
        back.sort(key=lambda item: item[0])
        self.buffer.push_front(entry for _sent, entries in back for entry in entries)
        self.inflight.clear()
        self.unconfirmed.clear()
        self.unconfirmed_bytes = 0
        self.unwritten.clear()
        self.confirm = None
        for _topic, _data, _retain, ack in self.control:
            if ack is not None and ack.future is not None and not ack.future.done():
                ack.future.set_result(None)
        self.control.clear()

    def in_flight(self) -> list[Entry]:
        """Callers' messages handed to the current connection and not confirmed yet, in send order."""
        entries = [(u.sent, e) for u in self.unconfirmed for e in u.batch]
        entries += [
            (e.ack.sent, e)
            for e in self.inflight.values()
            if e.ack is not None and e.ack.kind is AckKind.USER
        ]
        return [e for _sent, e in sorted(entries, key=lambda item: item[0])]

    def closed_by_broker(self, reason: str, stats: ConnectorStats) -> None:
        """The broker closed a session soon after it began (call before `lost`): the message it
        refuses is among those in flight. The second such close while one suspect is in flight
        alone quarantines it: dropped, counted (``dropped`` and ``quarantined``), logged at ERROR
        with the broker's reason, never sent again.
        """
        flying = self.in_flight()
        if len(flying) == 1 and id(flying[0]) in self.suspects:
            entry = flying[0]
            self.unconfirmed.clear()
            self.unconfirmed_bytes = 0
            for mid, e in list(self.inflight.items()):
                if e is entry:
                    del self.inflight[mid]
            self.suspects.discard(id(entry))
            stats.dropped += 1
            stats.quarantined += 1
            detail = (
                f"quarantined a message to {entry.topic!r} ({len(entry.data)} bytes): the broker closed "
                f"the connection twice while it was in flight ({reason}); it is not sent again"
            )
            self._log.error("%s", detail)
            ack = entry.ack
            if ack is not None and ack.future is not None and not ack.future.done():
                ack.future.set_exception(ConnectorError(detail))
                ack.future.exception()
            return
        self.suspects = {id(e) for e in flying}

    def finish(self, stats: ConnectorStats) -> tuple[int, int]:
        """The session ended: account for every message not confirmed, fail waiting callers.

        Never handed over (queued, or in a batch not yet written): ``stats.dropped``. Written but not
        confirmed by the broker (QoS 0 batches before any later PUBACK; QoS 1 without its PUBACK):
        ``stats.unconfirmed``, never ``dropped`` (they may well have arrived). Returns
        ``(dropped, unconfirmed)`` for this call.
        """
        never_sent = list(self.control)
        written: list[Entry] = list(self.inflight.values())
        rewritten, self.rewritten = self.rewritten, {}
        for entry in self.buffer.take_all():
            (written if rewritten.get(id(entry)) is entry else never_sent).append(entry)
        for u in self.unconfirmed:
            (written if u.written.is_published() else never_sent).extend(u.batch)
        self.unconfirmed.clear()
        self.unconfirmed_bytes = 0
        self.inflight.clear()
        self.control.clear()
        self.unwritten.clear()
        self.wire = None
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        dropped = unconfirmed = 0
        for entries, is_written in ((never_sent, False), (written, True)):
            for _topic, _data, _retain, ack in entries:
                if ack is None or ack.kind is AckKind.USER:
                    if is_written:
                        unconfirmed += 1
                    else:
                        dropped += 1
                if ack is not None and ack.future is not None and not ack.future.done():
                    if ack.kind is AckKind.USER:
                        ack.future.set_exception(unsent_at_disconnect())
                        ack.future.exception()  # the caller may be gone; never "exception never retrieved"
                    else:
                        ack.future.set_result(None)
        stats.dropped += dropped
        stats.unconfirmed += unconfirmed
        return dropped, unconfirmed

    # ------------------------------------------------------------------ sending

    def too_large(self, topic: str, data: bytes, qos: int) -> bool:
        """Whether the broker's Maximum Packet Size (when known) refuses this message."""
        limit = self.max_packet_size
        if limit is None or len(data) + 4 * len(topic) + 16 <= limit:
            return False
        fits = self.fits
        return fits is not None and not fits(topic, data, qos)

    def _refuse_oversize(self, entry: Entry) -> None:
        """Drop a queued message the broker's limit (learnt after it was queued) refuses: counted,
        logged at ERROR, never sent (the broker would close the connection for it).
        """
        self.buffer.stats.dropped += 1
        size = len(entry.data)
        detail = (
            f"dropped a message of {size} bytes to {entry.topic!r}: larger than the broker's Maximum "
            f"Packet Size ({self.max_packet_size} bytes)"
        )
        self._log.error("%s", detail)
        ack = entry.ack
        if ack is not None and ack.future is not None and not ack.future.done():
            ack.future.set_exception(PayloadError(detail))
            ack.future.exception()

    def send_control(self, entry: Entry) -> None:
        """Queue a control message (presence, marker, confirm) ahead of the publishes."""
        self.control.append(entry)
        self.schedule()

    def schedule(self) -> None:
        """Run `flush` soon (once, however often this is called before it runs)."""
        if self.flush_handle is None and self.wire is not None:
            self.flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Hand queued messages to the wire, within the bounds (see the module doc)."""
        self.flush_handle = None
        wire = self.wire
        if wire is None or wire.lost:
            return
        inflight = self.inflight
        max_inflight = self.max_inflight
        control = self.control
        while control and len(inflight) < max_inflight:
            if not self._send_qos1(wire, control[0]):
                return
            control.popleft()
        queue = self.queue
        unconfirmed = self.unconfirmed
        unwritten = self.unwritten
        while unwritten and unwritten[0].is_published():
            unwritten.popleft()
        suspects = self.suspects
        while queue:
            if suspects and not self._careful_ok(queue[0]):
                break
            if queue[0].ack is None:
                if len(unwritten) >= MAX_UNWRITTEN:
                    break
                batch: list[Entry] = []
                size = 0
                while queue and queue[0].ack is None and size < BATCH_BYTES:
                    if suspects and batch and (id(queue[0]) in suspects or id(batch[0]) in suspects):
                        break  # a suspect travels alone
                    entry = queue.popleft()
                    if self.fits is not None and self.too_large(entry.topic, entry.data, 0):
                        self._refuse_oversize(entry)
                        continue
                    batch.append(entry)
                    size += len(entry.data) + len(entry.topic)
                if not batch:
                    continue
                written = wire.send_qos0(batch)
                if written is None:  # the connection is going away: keep them queued
                    queue.extendleft(reversed(batch))
                    return
                if self.rewritten:
                    for entry in batch:
                        self.rewritten.pop(id(entry), None)
                unwritten.append(written)
                self.sent += 1
                unconfirmed.append(Unconfirmed(self.sent, batch, size, written))
                self.unconfirmed_bytes += size
                while self.unconfirmed_bytes > UNCONFIRMED_BYTES:
                    self.unconfirmed_bytes -= unconfirmed.popleft().size
            else:
                if control or len(inflight) >= max_inflight:
                    break
                head = queue[0]
                if self.fits is not None and self.too_large(head.topic, head.data, 1):
                    self.buffer.popleft()
                    self._refuse_oversize(head)
                    continue
                if not self._send_qos1(wire, queue[0]):
                    return
                if self.rewritten:
                    self.rewritten.pop(id(head), None)
                self.buffer.popleft()
        if unconfirmed and self.confirm is None:
            self.confirm = Ack(None, AckKind.CONFIRM)
            confirm: Entry = Outgoing(self.sync_topic, b"", False, self.confirm)
            if control or len(inflight) >= max_inflight or not self._send_qos1(wire, confirm):
                control.append(confirm)  # sent by a later flush, still after the batches
        if self.idle_waiter is not None:
            self.check_idle()

    def _careful_ok(self, head: Entry) -> bool:
        """With suspects queued: nothing new goes out while a suspect is unconfirmed, and a suspect
        goes out only when nothing else is unconfirmed.
        """
        suspects = self.suspects
        busy = bool(self.unconfirmed) or self.user_qos1_inflight()
        if not busy:
            return True
        if id(head) in suspects:
            return False
        return not any(id(e) in suspects for e in self.in_flight())

    def _send_qos1(self, wire: Wire, entry: Entry) -> bool:
        ack = entry.ack
        assert ack is not None
        expiry = ack.expiry
        if expiry is None:
            mid = wire.publish_qos1(entry.topic, entry.data, entry.retain)
        else:
            mid = wire.publish_qos1(entry.topic, entry.data, entry.retain, expiry)
        if mid is None:
            return False
        self.sent += 1
        ack.sent = self.sent
        self.inflight[mid] = entry
        return True

    def write_now(self) -> None:
        """Hand what fits to the wire and let it write to the socket now (non-blocking).

        For a producer that never yields to the event loop: only what the socket cannot take stays.
        """
        wire = self.wire
        if wire is None:
            return
        half = self.buffer.max_buffered // 2
        for _ in range(8):
            before = len(self.queue)
            self.flush()
            wire.write_now()
            self.flush()
            if wire.lost or len(self.queue) < half or len(self.queue) >= before:
                return

    # ------------------------------------------------------------------ acknowledgements

    def published(self, mid: int, reason: int) -> None:
        """From the wire: a QoS 0 batch was written (`mid` 0) or the PUBACK of message `mid` arrived."""
        if mid:
            entry = self.inflight.pop(mid, None)
            if entry is not None:
                ack = entry.ack
                assert ack is not None
                if self.suspects:
                    self.suspects.discard(id(entry))
                ack.reason = reason
                if self.unconfirmed:
                    self._confirmed(ack.sent)
                self._acked(entry, ack)
        # A QoS 1 slot or some of the unconfirmed window freed (or a batch was written): hand over more.
        if self.flush_handle is None and (
            self.queue or self.control or self.unconfirmed or self.idle_waiter is not None
        ):
            self.schedule()

    def _confirmed(self, upto: int) -> None:
        """The broker has everything handed over before send position `upto`."""
        unconfirmed = self.unconfirmed
        suspects = self.suspects
        while unconfirmed and unconfirmed[0].sent < upto:
            done = unconfirmed.popleft()
            self.unconfirmed_bytes -= done.size
            if suspects:
                for entry in done.batch:
                    suspects.discard(id(entry))

    def _acked(self, entry: Entry, ack: Ack) -> None:
        refused = ack.reason >= 0x80
        kind = ack.kind
        if kind is AckKind.CONFIRM:
            if self.confirm is ack:
                self.confirm = None  # refused or not, it was answered in order
            return
        if kind is AckKind.MARKER:
            if refused:
                self._on_refused_marker(ack.reason, entry.topic)
            return
        fut = ack.future
        if refused:
            detail = (
                f"the broker refused the qos=1 publish to {entry.topic!r}: {self._reason_text(ack.reason)}"
            )
            if kind is AckKind.PRESENCE:
                self._log.warning("%s", detail)
            elif fut is not None and not fut.done():
                fut.set_exception(ConnectorError(detail))
                return
        if fut is not None and not fut.done():
            fut.set_result(None)

    # ------------------------------------------------------------------ draining

    def user_qos1_inflight(self) -> bool:
        """Whether a caller's QoS 1 message awaits its PUBACK."""
        return any(e.ack is not None and e.ack.kind is AckKind.USER for e in self.inflight.values())

    def check_idle(self) -> None:
        """Resolve `idle_waiter` once nothing from ``publish`` is waiting (queued, in flight, unwritten).

        During an outage with nothing queued there is nothing to flush, so disconnect need not wait.
        """
        waiter = self.idle_waiter
        if waiter is None or waiter.done():
            return
        if self.queue or self.unconfirmed or self.user_qos1_inflight():
            return
        waiter.set_result(None)
