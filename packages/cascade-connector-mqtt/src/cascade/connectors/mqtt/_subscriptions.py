"""The broker subscriptions of one MQTT session: subscription ids, sync markers and replay routing.

One broker subscription per distinct filter, shared by the local subscriptions on it. Each SUBSCRIBE
gets a fresh MQTT 5 subscription identifier, so the retained replay of one SUBSCRIBE can be told from
another's (a replay goes only to the subscriptions waiting for that very SUBSCRIBE: docs/contract.md,
promise 5). "All retained messages have arrived" is detected with a *sync marker*: a QoS 1 publish to
the client's private sync topic sent behind the SUBSCRIBE; the broker sends the retained messages
first, then the marker back.
"""

from __future__ import annotations

__all__ = ["BrokerSubscription", "MalformedFilter", "MqttSubscription", "Registry", "SyncState"]

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from cascade.connectors.protocol import Callback, SubscriptionIndex
from cascade.connectors.protocol.core import Outgoing

from ._covering import covering_set, covers
from ._outbound import Ack, AckKind, Outbound

if TYPE_CHECKING:
    from ._connector import MqttConnector

SYNC_SID: Final = 1  # subscription identifier of the private sync topic
SYNC_RETRY: Final = 0.5  # seconds without the awaited sync marker before another one is sent
_MAX_SID: Final = 268_435_455  # MQTT 5 limit on subscription identifiers


class SyncState(enum.Enum):
    """Whether `subscribe()` can wait for the retained replay on this connection."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"  # the broker refused the sync topic: subscribe() returns at SUBACK


class BrokerSubscription:
    """One subscription at the broker (one per distinct filter), shared by local subscriptions.

    `sid` is the identifier of its latest SUBSCRIBE; `sids` keeps every identifier it had (copies in
    flight may still carry an older one).
    """

    __slots__ = ("filter", "sid", "sids", "subs")

    def __init__(self, topic_filter: str, sid: int) -> None:
        self.filter = topic_filter
        self.sid = sid
        self.sids = [sid]
        self.subs: dict[MqttSubscription, None] = {}


class MqttSubscription:
    """What `MqttConnector.subscribe` returns: `unsubscribe()` ends it (idempotent)."""

    __slots__ = ("_broker", "_connector", "_sync_sid", "active", "callback")

    def __init__(self, connector: MqttConnector, broker: BrokerSubscription, callback: Callback) -> None:
        self._connector = connector
        self._broker = broker
        self._sync_sid = broker.sid  # the identifier of the SUBSCRIBE whose retained replay it waits for
        self.callback = callback
        self.active = True

    @property
    def topic_filter(self) -> str:
        """The subscription filter."""
        return self._broker.filter

    async def unsubscribe(self) -> None:
        """End this subscription: once this returns its callback is not called again. Idempotent.

        Other subscriptions, even on the same filter, are unaffected; the broker subscription is removed
        when the last local subscription on its filter goes (waits for the UNSUBACK, bounded).
        """
        if not self.active:
            return
        self.active = False
        await self._connector._remove(self)

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"MqttSubscription({self._broker.filter!r}, {state})"


class Registry:
    """Every broker subscription of a session, the sync markers and the routing of inbound messages."""

    def __init__(
        self, sync_topic: str, outbound: Outbound, log: logging.Logger, fallback: str | None = None
    ) -> None:
        self.sync_topic = sync_topic
        self.fallback = fallback  # where markers go if the broker refuses sync_topic (None: nowhere)
        self.sync = SyncState.AVAILABLE
        self.by_filter: dict[str, BrokerSubscription] = {}
        self.by_sid: dict[int, BrokerSubscription] = {}
        self.index: SubscriptionIndex[BrokerSubscription] = SubscriptionIndex()
        self.syncing: dict[MqttSubscription, int] = {}  # waiting for the marker with this number
        self.waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._outbound = outbound
        self._log = log
        self._next_sid = SYNC_SID + 1
        self._marker_seq = 0
        self._markers_unseen: deque[int] = deque()  # markers sent on this connection, not yet back
        self._marker_retry_seen = 0
        self._timer: asyncio.TimerHandle | None = None
        self.replay_timeouts = 0  # subscribe() calls whose sync marker did not come back in time
        self.covering: set[str] = set()  # connections without subscription ids: the broker's filters

    # ------------------------------------------------------------------ local subscriptions

    def add(self, connector: MqttConnector, topic: str, callback: Callback, online: bool) -> MqttSubscription:
        """A new local subscription on `topic` (a new identifier if `online` and the filter exists)."""
        bsub = self.by_filter.get(topic)
        if bsub is None:
            bsub = BrokerSubscription(topic, self._new_sid())
            self.by_filter[topic] = bsub
            self.by_sid[bsub.sid] = bsub
            self.index.add(topic, bsub)
        elif online:
            # Another SUBSCRIBE for this filter: a new identifier tells its retained replay apart.
            bsub.sid = self._new_sid()
            bsub.sids.append(bsub.sid)
            self.by_sid[bsub.sid] = bsub
        sub = MqttSubscription(connector, bsub, callback)
        bsub.subs[sub] = None
        return sub

    # ------------------------------------------------------------------ covering sets (no ids)

    def cover(self, topic: str) -> str:
        """The broker filter to SUBSCRIBE for a new local subscription on `topic` (connections without
        subscription ids): the covering filter that will serve it, marked as subscribed.
        """
        desired = covering_set(self.by_filter)
        target = next(f for f in sorted(desired) if covers(f, topic))
        self.covering.add(target)
        return target

    def reconcile(self) -> tuple[list[str], list[str]]:
        """(filters to SUBSCRIBE, filters to UNSUBSCRIBE) so that the broker holds exactly the covering
        set of the local filters; SUBSCRIBE first, so no topic goes unserved in between.
        """
        desired = covering_set(self.by_filter)
        add = sorted(desired - self.covering)
        remove = sorted(self.covering - desired)
        self.covering = set(desired)
        return add, remove

    def _new_sid(self) -> int:
        sid = self._next_sid
        while sid in self.by_sid or sid == SYNC_SID:
            sid = sid + 1 if sid < _MAX_SID else SYNC_SID + 1
        self._next_sid = sid + 1 if sid < _MAX_SID else SYNC_SID + 1
        return sid

    def detach(self, sub: MqttSubscription) -> BrokerSubscription | None:
        """Forget `sub` locally; return its broker subscription if that has no subscriber left."""
        self.syncing.pop(sub, None)
        bsub = sub._broker
        bsub.subs.pop(sub, None)
        if bsub.subs or self.by_filter.get(bsub.filter) is not bsub:
            return None
        del self.by_filter[bsub.filter]
        for sid in bsub.sids:
            self.by_sid.pop(sid, None)
        self.index.remove(bsub)
        return bsub

    def wait_for_replay(self, sub: MqttSubscription) -> asyncio.Future[None] | None:
        """Send a marker behind `sub`'s SUBSCRIBE; the future resolves when it is back (None: no sync)."""
        waiter = self.marker_waiter()
        if waiter is not None:
            self.syncing[sub] = self._marker_seq
        return waiter

    def marker_waiter(self) -> asyncio.Future[None] | None:
        """Send a marker behind everything sent so far; the future resolves when it is back (also when
        the connection is lost or sync becomes unavailable first). None: no sync on this connection.
        """
        if self.sync is not SyncState.AVAILABLE:
            return None
        seq = self.send_marker()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append((seq, waiter))
        return waiter

    def resubscribed(self) -> None:
        """After a reconnect re-sent every SUBSCRIBE: each live subscription waits for its replay."""
        seq = self.send_marker()
        for bsub in self.by_filter.values():
            for sub in bsub.subs:
                sub._sync_sid = bsub.sid
                self.syncing[sub] = seq

    def end(self) -> None:
        """The session ended: every subscription ends, every waiter is released."""
        self.release_waiters()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for bsub in self.by_filter.values():
            for sub in bsub.subs:
                sub.active = False
        self.by_filter.clear()
        self.covering.clear()
        self.by_sid.clear()
        self.index.clear()
        self.syncing.clear()

    # ------------------------------------------------------------------ sync markers

    def new_connection(self) -> None:
        """A new connection: markers of the old one will not come back."""
        self.sync = SyncState.AVAILABLE
        self._markers_unseen.clear()

    def can_fall_back(self) -> bool:
        """Whether markers can still move to the fallback topic (set, and not in use yet)."""
        return self.fallback is not None and self.sync_topic != self.fallback

    def use_fallback(self) -> None:
        """Send markers (and the outbound confirms) to the fallback topic from now on. The markers sent
        to the old topic will not come back: whatever waited for them waits for the next marker.
        """
        assert self.fallback is not None
        self.sync_topic = self.fallback
        self._outbound.sync_topic = self.fallback
        self._markers_unseen.clear()
        self.sync = SyncState.AVAILABLE

    def resend(self) -> None:
        """A new marker for every subscription and `subscribe()` still waiting (after `use_fallback`)."""
        if not (self.waiters or self.syncing):
            return
        seq = self.send_marker()
        self.syncing = dict.fromkeys(self.syncing, seq)
        self.waiters = [(seq, fut) for _until, fut in self.waiters]

    def send_marker(self) -> int:
        """Queue the next sync marker (QoS 1, behind everything sent so far); return its number."""
        self._marker_seq += 1
        seq = self._marker_seq
        self._outbound.send_control(
            Outgoing(self.sync_topic, str(seq).encode(), False, Ack(None, AckKind.MARKER, seq))
        )
        self._markers_unseen.append(seq)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SYNC_RETRY, self._retry)
        return seq

    def _retry(self) -> None:
        """A broker may drop a marker (Mosquitto does when the client's queue is at max_queued_messages):
        while something still waits for one, send another; any later marker ends the same waits.
        """
        self._timer = None
        wire = self._outbound.wire
        if wire is None or wire.lost or self.sync is not SyncState.AVAILABLE:
            return
        if not (self.waiters or self.syncing):
            return
        oldest = self._markers_unseen[0] if self._markers_unseen else None
        if oldest is None or oldest == self._marker_retry_seen:
            self.send_marker()  # the oldest marker has not come back for a whole interval
        else:
            self._marker_retry_seen = oldest
            self._timer = asyncio.get_running_loop().call_later(SYNC_RETRY, self._retry)

    def marker(self, payload: bytes | bytearray) -> None:
        """A marker came back: the retained replays it follows are complete."""
        try:
            seq = int(payload)
        except ValueError:
            return
        unseen = self._markers_unseen
        skipped = 0
        while unseen and unseen[0] <= seq:
            skipped += unseen.popleft() != seq
        if skipped:
            self._log.warning(
                "the broker dropped %d sync marker(s), so it may also have dropped retained messages "
                "(on Mosquitto, raise max_queued_messages)",
                skipped,
            )
        syncing = self.syncing
        for sub in [s for s, until in syncing.items() if until <= seq]:
            del syncing[sub]
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for until, fut in self.waiters:
            if until <= seq:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((until, fut))
        self.waiters = keep

    def release_waiters(self) -> None:
        """Let every `subscribe()` waiting for a replay return (connection lost, sync unavailable)."""
        waiters, self.waiters = self.waiters, []
        for _seq, fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def unavailable(self, why: str) -> None:
        """The broker refuses the sync topic: `subscribe()` can no longer wait for retained messages."""
        if self.sync is SyncState.UNAVAILABLE:
            return
        self.sync = SyncState.UNAVAILABLE
        self._log.warning(
            "%s; subscribe() can no longer wait for retained messages (allow this client to publish and "
            "subscribe to %r)",
            why,
            self.sync_topic,
        )
        self.syncing.clear()
        self.release_waiters()

    # ------------------------------------------------------------------ routing

    def targets(self, topic: str, retain: bool, sids: Sequence[int]) -> list[MqttSubscription]:
        """The local subscriptions an inbound message goes to.

        A message flagged retained is a replay caused by a (re)subscription: it goes only to the
        subscriptions still waiting for the retained state of that very SUBSCRIBE (promise 5).
        """
        replay = retain and self.sync is SyncState.AVAILABLE
        if sids:
            by_sid = self.by_sid
            if replay:
                syncing = self.syncing
                return [
                    sub
                    for sid in sids
                    if sid in by_sid
                    for sub in by_sid[sid].subs
                    if sub._sync_sid == sid and sub in syncing
                ]
            targets = [sub for sid in sids if sid in by_sid for sub in by_sid[sid].subs]
            if len(sids) > 1:
                targets = list(dict.fromkeys(targets))
            return targets
        syncing = self.syncing
        return [sub for bsub in self.index.match(topic) for sub in bsub.subs if not replay or sub in syncing]


class MalformedFilter:
    """Counts a malformed message once, not once per copy.

    A broker may send one copy per matching subscription (Mosquitto does); the copies of one publish
    arrive back to back with the same bytes and disjoint subscription identifiers.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[str, bytes | bytearray, bool, set[int]] | None = None

    def first_copy(self, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int]) -> bool:
        """Whether this malformed message is new (not another copy of the previous one)."""
        last = self._last
        if last is not None and sids and last[0] == topic and last[1] == payload and last[2] == retain:
            seen = last[3]
            if seen.isdisjoint(sids):
                seen.update(sids)
                return False
        self._last = (topic, payload, retain, set(sids))
        return True

    def reset(self) -> None:
        """A well-formed message arrived: the next malformed one is new."""
        self._last = None
