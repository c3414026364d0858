"""The lifecycle of an `MqttConnector`: connect, the supervisor task, dispatch, disconnect.

The supervisor (one task per session) runs the one dispatch loop, `_pump`: inbound messages go to
their callbacks one at a time, in arrival order. When the connection is lost it reconnects with the
core's `Backoff` and adopts the new connection (presence, the sync topic, every live subscription,
then the queue).
"""

from __future__ import annotations

__all__ = ["Lifecycle"]

import asyncio
import functools
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, Final

from cascade.connectors.protocol import (
    ConnectorError,
    ConnectorStats,
    PayloadError,
    decode_payload,
    utc_now_iso,
)
from cascade.connectors.protocol.core import Backoff, ConnectorState, Outgoing, Presence, StateMachine

from ._client import SUBSCRIBE_LOST, Link, reason_text
from ._dialer import Dialer
from ._outbound import Ack, AckKind, Outbound
from ._probe import RetainedProbe
from ._session import Ending, Phase, Session
from ._settings import SYNC_NAMESPACE, MqttSettings

_log = logging.getLogger("cascade.connectors.mqtt")

SHORT_SESSION: Final = 5.0
"""Seconds: a connection lost sooner after its CONNACK than max(this, 2 x reconnect_max_delay) counts
as a failed attempt (backoff keeps growing), and if the broker closed it, the messages in flight
become suspects (a second such close with one suspect in flight quarantines it)."""


def _broker_closed(reason: str | None) -> bool:
    """Whether the broker ended the connection on purpose (not our close, not a keepalive timeout,
    not a broker shutting down).
    """
    if reason is None or "Server shutting down" in reason:
        return False
    # "connection lost": paho's generic end (its DISCONNECT or reset not read first), seen under load.
    return reason.startswith(
        ("the broker sent DISCONNECT", "closed by the broker", "connection reset", "connection lost")
    )


class Lifecycle:
    """The lifecycle half of `MqttConnector` (which sets these attributes)."""

    _settings: MqttSettings
    _presence: Presence
    _stats: ConnectorStats
    _machine: StateMachine
    _lock: asyncio.Lock | None
    _session: Session | None
    _out: Outbound
    _dialer: Dialer
    _probe: RetainedProbe

    def _new_session(self) -> Session:
        return Session(self._settings, self._stats, _log, reason_text)

    async def _open(self, session: Session) -> Link:
        """Open a connection (the dialer picks the address and the MQTT version); the last will carries
        the time the connection comes up, the same as its ``online`` (an observer never sees an offline
        older than the online it ends).
        """
        session.presence_ts = utc_now_iso()
        return await self._dialer.open(self, self._presence.offline(session.presence_ts))

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def connect(self) -> None:
        """Connect and publish retained ``online`` presence. Idempotent.

        Raises `ConnectionFailedError` (reason unreachable, timeout, auth, tls or refused) if the broker
        cannot be reached or refuses; takes at most about `connect_timeout` per connection step. Later
        losses are not raised: the connector reconnects by itself.
        """
        async with self._get_lock():
            if self._machine.state is not ConnectorState.IDLE:
                return
            self._machine.to(ConnectorState.CONNECTING)
            session = self._new_session()
            try:
                link = await self._open(session)
            except BaseException:
                self._machine.to(ConnectorState.IDLE)
                raise
            self._session = session
            self._out = session.outbound
            self._machine.to(ConnectorState.CONNECTED)
            presence = self._adopt(session, link)
            session.task = asyncio.get_running_loop().create_task(
                self._supervise(session, link), name=f"cascade-mqtt-{self._settings.client_id}"
            )
            s = self._settings
            host, port = self._dialer.address
            _log.info("connected to %s:%s as %s (MQTT %s)", host, port, s.client_id, link.protocol.value)
            try:
                async with asyncio.timeout(s.connect_timeout):
                    await presence
            except TimeoutError:
                _log.warning("the broker did not acknowledge the online presence in time")

    async def disconnect(self) -> None:
        """Send what is queued (up to `flush_timeout` s), publish retained ``offline``, disconnect.

        Idempotent; a no-op before `connect`. After it returns no callback runs, every subscription has
        ended, and messages that could not be sent were counted in ``stats.dropped`` (a `qos=1` publish
        still waiting raises `NotConnectedError`).
        """
        async with self._get_lock():
            session = self._session
            if not self._machine.accepting or session is None:
                return
            self._machine.to(ConnectorState.CLOSING)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._settings.flush_timeout
            try:
                self._probe.abandon(session)
                await self._drain(session.outbound, deadline)
                link = session.link
                if link is not None and not link.lost:
                    ack = Ack(loop.create_future(), AckKind.PRESENCE)
                    ack.expiry = self._settings.presence_expiry_interval
                    session.outbound.send_control(
                        Outgoing(self._settings.status_topic, self._presence.offline(), True, ack)
                    )
                    grace = max(deadline - loop.time(), 0.5)
                    try:
                        async with asyncio.timeout(grace):
                            await ack.future  # type: ignore[misc]
                    except TimeoutError:
                        _log.warning("the broker did not acknowledge the offline presence in time")
                    session.ending = Ending.STOPPING  # our own DISCONNECT is not a loss to recover
                    await link.close(max(deadline - loop.time(), 0.5))
            finally:
                await self._stop_supervisor(session)
                self._finish(session)
                self._machine.to(ConnectorState.IDLE)
            _log.info("disconnected from %s:%s", *self._dialer.address)

    async def _drain(self, out: Outbound, deadline: float) -> None:
        """Wait until everything queued has been written / acknowledged, or until `deadline`."""
        out.idle_waiter = asyncio.get_running_loop().create_future()
        out.check_idle()
        out.schedule()
        try:
            async with asyncio.timeout_at(deadline):
                await out.idle_waiter
        except TimeoutError:
            _log.info(
                "disconnect: the broker did not confirm everything within flush_timeout=%g s",
                self._settings.flush_timeout,
            )
        finally:
            out.idle_waiter = None

    async def _stop_supervisor(self, session: Session) -> None:
        session.close()
        task = session.task
        if task is None or task is asyncio.current_task():
            return
        if session.phase is Phase.RECONNECTING:
            task.cancel()
        s = self._settings
        done, _ = await asyncio.wait({task}, timeout=s.flush_timeout + s.connect_timeout)
        if not done:
            _log.warning("a subscription callback did not return; cancelling it")
            task.cancel()
            await asyncio.wait({task})

    def _finish(self, session: Session) -> None:
        """After the supervisor stopped: account for what was never sent, end every subscription."""
        link = session.link
        if link is not None:
            link.abort()
        session.link = None
        dropped, unconfirmed = session.outbound.finish(self._stats)
        if dropped or unconfirmed:
            _log.warning(
                "disconnect: %d message(s) never sent (counted in stats.dropped); %d written but not "
                "confirmed by the broker (stats.unconfirmed; publish with qos=1 to know it arrived)",
                dropped,
                unconfirmed,
            )
        session.registry.end()
        self._discard_inbound(session)
        self._session = None

    def _discard_inbound(self, session: Session) -> None:
        """The session ends: what was received and not dispatched is counted in ``dropped_inbound``."""
        sync = session.registry.sync_topic
        count = session.inbound.discard_all(
            lambda entry: entry[0] != sync and not entry[0].startswith(SYNC_NAMESPACE)
        )
        if count:
            _log.warning("disconnect: %d received message(s) discarded before their callbacks ran", count)

    # ------------------------------------------------------------------ callbacks from the Link

    def _link_message(
        self, link: Link, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int], mid: int
    ) -> None:
        session = self._session
        if session is None:
            return
        inbound = session.inbound
        if mid:  # QoS 1: never dropped; beyond max_inbound we stop reading (the broker holds the rest)
            inbound.append_kept((topic, payload, retain, sids, mid, link))
            if len(inbound.queue) >= inbound.max_inbound:
                link.pause_reading()
        elif len(inbound.queue) < inbound.max_inbound:  # InboundQueue.append's hot path, inlined
            inbound.queue.append((topic, payload, retain, sids, 0, link))
        else:
            inbound.append((topic, payload, retain, sids, 0, link))
        session.wake.set()

    def _link_malformed(self, link: Link, detail: str) -> None:
        """The transport dropped an inbound message (unacceptable topic, oversize): count it."""
        self._stats.malformed += 1

    def _link_published(self, link: Link, mid: int, reason: int) -> None:
        session = self._session
        if session is not None and link is session.link:
            session.outbound.published(mid, reason)

    def _link_lost(self, link: Link) -> None:
        session = self._session
        if session is None or link is not session.link:
            return
        session.link = None
        if self._machine.state is ConnectorState.CONNECTED:
            self._machine.to(ConnectorState.RECONNECTING)
        out = session.outbound
        if not session.stopping():
            if self._short(session) and _broker_closed(link.loss_reason):
                out.closed_by_broker(link.loss_reason or "closed", self._stats)
            else:
                out.suspects.clear()
        out.lost(requeue=not session.stopping())
        session.wake.set()

    def _short(self, session: Session) -> bool:
        """Whether the current session died "soon after CONNACK" (a failed attempt for backoff)."""
        window = max(SHORT_SESSION, 2 * self._settings.reconnect_max_delay)
        return asyncio.get_running_loop().time() - session.connected_at < window

    # ------------------------------------------------------------------ the supervisor task

    async def _supervise(self, session: Session, link: Link) -> None:
        backoff = Backoff(self._settings.reconnect_min_delay, self._settings.reconnect_max_delay)
        try:
            while True:
                await self._pump(session, link, None)
                if self._session is not session:
                    return  # disconnect() (and maybe connect()) ran inside a callback
                session.registry.release_waiters()
                if session.stopping():
                    return
                if self._machine.state is ConnectorState.CONNECTED:
                    self._machine.to(ConnectorState.RECONNECTING)
                short = self._short(session)
                if not short:
                    backoff.reset()  # a session that lasted: start again from the shortest delays
                host, port = self._dialer.address
                _log.warning(
                    "lost the connection to %s:%s (%s)%s; reconnecting",
                    host,
                    port,
                    link.loss_reason or "connection lost",
                    " soon after connecting: counted as a failed attempt" if short else "",
                )
                session.phase = Phase.RECONNECTING
                try:
                    while True:
                        if await self._pause(session, backoff.next_delay()):
                            return
                        try:
                            link = await self._open(session)
                            break
                        except ConnectorError as exc:
                            attempt = backoff.attempts
                            level = logging.WARNING if attempt == 1 or attempt % 30 == 0 else logging.DEBUG
                            _log.log(level, "reconnect attempt %d failed: %s", attempt, exc)
                finally:
                    session.phase = Phase.SERVING
                if session.stopping():
                    link.abort()
                    return
                self._stats.reconnects += 1
                host, port = self._dialer.address
                _log.info("reconnected to %s:%s", host, port)
                if self._machine.state is ConnectorState.RECONNECTING:
                    self._machine.to(ConnectorState.CONNECTED)
                self._adopt(session, link)
        except Exception:
            _log.exception("internal error in the MQTT connector; it stopped working")
            raise

    async def _pause(self, session: Session, delay: float) -> bool:
        """Sleep `delay` s unless asked to stop; return whether we must stop."""
        wake = session.wake
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not session.stopping():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await wake.wait()
            except TimeoutError:
                return session.stopping()
        return True

    async def _pump(self, session: Session, link: Link, until: asyncio.Future[None] | None) -> None:
        """THE dispatch loop: deliver inbound messages in order until `link` is lost (after delivering
        what it received), the session stops, or `until` is done (subscribe() from inside a callback).
        """
        inbound = session.inbound
        queue = inbound.queue
        wake = session.wake
        while self._session is session:
            if until is not None and until.done():
                return
            if queue:
                if session.ending is Ending.CLOSED:
                    self._discard_inbound(session)
                    return
                # One entry: its callbacks, then (QoS 1) its PUBACK (promise 13). The routing is
                # synchronous, so a message nobody takes costs no coroutine.
                topic, payload, retain, sids, mid, source = inbound.popleft()
                pending = self._handle(session, topic, payload, retain, sids)
                if pending is not None:
                    await pending
                if mid:
                    source.ack(mid)
                if link.reading_paused and len(queue) < inbound.max_inbound:
                    link.resume_reading()
                continue
            if link.lost or session.ending is not Ending.OPEN:
                return
            wake.clear()
            if queue or link.lost or (until is not None and until.done()):
                continue
            await wake.wait()

    def _handle(
        self, session: Session, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int]
    ) -> Coroutine[Any, Any, bool] | None:
        """Route one inbound message: the delivery to await, or None when no callback is to run (the
        sync topic and the probe's namespace, no local target, a malformed payload: counted here).
        """
        registry = session.registry
        if topic == registry.sync_topic:
            registry.marker(payload)
            return None
        if topic.startswith(SYNC_NAMESPACE):
            self._probe.seen(topic, payload, retain)
            return None  # the retained probe, other connectors' markers (reserved): never for subscriptions
        targets = registry.targets(topic, retain, sids)
        if not targets:
            return None
        try:
            data = decode_payload(payload)
        except PayloadError as exc:
            if session.malformed.first_copy(topic, payload, retain, sids):
                session.delivery.malformed(topic, exc)
            return None
        session.malformed.reset()
        return session.delivery.deliver(topic, payload, targets, data)

    def _adopt(self, session: Session, link: Link) -> asyncio.Future[None]:
        """A new connection: presence, the sync topic, every live subscription, then the queue."""
        session.link = link
        session.connected_at = asyncio.get_running_loop().time()
        out = session.outbound
        out.attach(link, link.receive_maximum, link.max_packet_size, link.fits)
        registry = session.registry
        registry.new_connection()
        session.subscribe_sync(link)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        online = self._presence.online(session.presence_ts)
        out.control.append(Outgoing(self._settings.status_topic, online, True, Ack(future, AckKind.PRESENCE)))
        if registry.by_filter:
            if link.subscription_ids:
                resubscribe: list[tuple[str, int | None]] = [
                    (bsub.filter, bsub.sid) for bsub in registry.by_filter.values()
                ]
            else:  # no subscription ids: the covering set of the local filters (docs/brokers.md)
                registry.covering.clear()
                resubscribe = [(topic_filter, None) for topic_filter in registry.reconcile()[0]]
            for topic_filter, sid in resubscribe:
                fut = link.subscribe(topic_filter, 1, sid)
                fut.add_done_callback(functools.partial(_resubscribed, topic_filter))
            registry.resubscribed()
        out.schedule()
        return future


def _resubscribed(topic_filter: str, fut: asyncio.Future[int]) -> None:
    code = fut.result()
    if code != SUBSCRIBE_LOST and code >= 0x80:
        _log.error(
            "after reconnecting, the broker refused the subscription %r: %s", topic_filter, reason_text(code)
        )
