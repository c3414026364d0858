"""The plain-client truth table: what one broker really does, measured with paho-mqtt alone.

`measure_broker(server)` returns the facts as JSON-ready data (the schema: docs/brokers.md, "The
results data"): how each protocol's CONNECT is answered, then per accepted protocol the facts the
connector depends on. Absences ("no retained message to a wildcard") are measured after a barrier and a
bounded wait (`ABSENCE_WAIT`), never assumed.
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

from tests.brokers._paho import PROTOCOLS, ProbeClient, ProbeError, Protocol, raw_connect, unique
from tests.brokers.servers._base import RunningBroker

__all__ = ["ABSENCE_WAIT", "FACTS", "measure_broker", "measure_protocol"]

# How long a probe waits for something that may legitimately never come (after a barrier), in seconds.
ABSENCE_WAIT = 2.0
RETAINED_FOR_ORDER = 50
ORDER_TRIALS = 3
# The racy rows below are measured over several trials; "no" means at least one trial went wrong (how
# many varies from run to run, so only the verdict is pinned).
MIXED_QOS_TRIALS = 100
MIXED_QOS_BATCH = 10  # topics subscribed together before one marker
REPLAY_TRIALS = 5
# A message that should have expired after 1 s must be gone this many seconds later.
EXPIRY_GRACE = 3.0

# The facts, in table order: key -> (column title, what it means).
FACTS: dict[str, tuple[str, str]] = {
    "overlap_copies": (
        "copies for overlapping subscriptions",
        "one client subscribed to `a/#` and `a/+` (two SUBSCRIBEs) gets a publish on `a/x` this many times",
    ),
    "retained_to_exact": ("retained to exact filter", "a new exact subscription gets the retained message"),
    "retained_to_wildcard": (
        "retained to wildcard filter",
        "a new `a/#` subscription gets the retained message",
    ),
    "live_retained_flag": (
        "RETAIN flag on a live retained publish",
        "the RETAIN bit on a retained publish forwarded to an existing subscriber (MQTT says 0)",
    ),
    "dollar_subscribe": ("SUBSCRIBE `$cascade/sync/x`", "the SUBACK code for a `$`-prefixed exact filter"),
    "dollar_publish": ("PUBLISH `$cascade/sync/x`", "the PUBACK for a QoS 1 publish to a `$` topic"),
    "dollar_roundtrip": ("`$` topic round trip", "the client receives its own publish to a `$` topic"),
    "marker_after_retained": (
        "QoS 1 marker after retained replay",
        "a QoS 1 publish on a private topic sent right after SUBSCRIBE arrives after that SUBSCRIBE's "
        "retained "
        f"messages ({RETAINED_FOR_ORDER} retained, {ORDER_TRIALS} trials)",
    ),
    "mixed_qos_order": (
        "QoS 0 then QoS 1 right after SUBACK in order",
        "a client subscribes to new topics, then sends a QoS 1 marker to its own private topic (as the "
        "connector's subscribe does); once the marker is back it publishes QoS 0 then QoS 1 on each new "
        f"topic: each pair comes back in publish order ({MIXED_QOS_TRIALS} topics, "
        f"{MIXED_QOS_BATCH} a marker)",
    ),
    "retained_replay_own_topic": (
        "retained replay only for the subscribed topic",
        "a client subscribes to an exact topic holding a retained message; a second client then connects "
        "and subscribes to another one: each gets its own topic's retained message once and no other "
        f"({REPLAY_TRIALS} trials)",
    ),
    "empty_retained_clears": (
        "zero-byte retained clears",
        "a retained zero-byte payload removes the retained state",
    ),
    "will_on_abrupt_close": (
        "last will on abrupt close",
        "a TCP close without DISCONNECT publishes the will",
    ),
    "message_expiry": (
        "message expiry honoured",
        "a retained message with Message Expiry Interval 1 s expires",
    ),
}


def paho_version() -> str:
    """The paho-mqtt version doing the measuring."""
    return importlib.metadata.version("paho-mqtt")


class _Session:
    """Clients of one protocol on one broker, closed together."""

    def __init__(self, server: RunningBroker, protocol: Protocol) -> None:
        self.server = server
        self.protocol = protocol
        self.clients: list[ProbeClient] = []
        self.prefix = unique(f"cascade-truth/{server.name}")

    def client(self, **options: Any) -> ProbeClient:
        client = ProbeClient(
            self.server.host, self.server.port, self.protocol, credentials=self.server.credentials, **options
        )
        self.clients.append(client)
        return client

    def topic(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _overlap(s: _Session) -> int:
    sub, pub = s.client(), s.client()
    sub.subscribe(s.topic("ov/#"))
    sub.subscribe(s.topic("ov/+"))
    pub.publish(s.topic("ov/x"), b"overlap")
    sub.barrier(via=pub)
    sub.poll(lambda: sub.count(b"overlap") >= 2, ABSENCE_WAIT)
    return sub.count(b"overlap")


def _retained_to(s: _Session, filter_suffix: str) -> bool:
    pub = s.client()
    topic = s.topic(f"ret-{filter_suffix.replace('#', 'all').replace('+', 'one')}/x")
    payload = unique("retained").encode()
    pub.publish(topic, payload, retain=True)
    sub = s.client()
    sub.subscribe(topic if filter_suffix == "exact" else topic.rsplit("/", 1)[0] + "/" + filter_suffix)
    got = sub.poll(lambda: sub.count(payload) > 0, ABSENCE_WAIT)
    pub.publish(topic, b"", retain=True)
    return got


def _live_retained_flag(s: _Session) -> int:
    sub, pub = s.client(), s.client()
    topic = s.topic("live/x")
    sub.subscribe(topic)
    pub.publish(topic, b"live", retain=True)
    sub.wait_for(lambda: sub.count(b"live") > 0, "live retained publish")
    flag = int(sub.received(topic)[0].retain)
    pub.publish(topic, b"", retain=True)
    return flag


def _dollar(s: _Session) -> tuple[str, str, bool]:
    client = s.client()
    topic = f"$cascade/sync/{client.client_id}"
    codes = client.subscribe(topic)
    if client.disconnected or not codes:
        subscribe = "connection closed"
    else:
        subscribe = f"granted QoS {codes[0]}" if codes[0] < 0x80 else f"refused 0x{codes[0]:02X}"
    if client.disconnected:
        return subscribe, "not tried (connection closed)", False
    ack = client.publish(topic, b"dollar")
    publish = "connection closed" if ack is None else "accepted" if ack == 0 else f"refused 0x{ack:02X}"
    got = (not client.disconnected) and client.poll(lambda: client.count(b"dollar") > 0, ABSENCE_WAIT)
    return subscribe, publish, got


def _marker_overtook(s: _Session, topics: list[str], filter_: str) -> bool:
    """One trial: did the QoS 1 marker arrive before every retained message of `filter_`?"""
    count = len(topics)
    sub = s.client()
    sync = f"cascade-truth/sync/{sub.client_id}"
    sub.subscribe(sync)
    sub.subscribe(filter_, wait=False)
    marker = unique("marker").encode()
    sub.publish(sync, marker, wait=False)
    sub.wait_for(lambda: sub.count(marker) > 0, "marker")
    sub.wait_for(lambda: len([m for m in sub.received() if m.retain]) >= count, "every retained message")
    order = [m.payload for m in sub.messages if m.payload == marker or m.retain]
    return order.index(marker) < count


def _marker_after_retained(s: _Session, wildcard: bool) -> dict[str, Any]:
    pub = s.client()
    count = RETAINED_FOR_ORDER if wildcard else 1
    overtaken = 0
    for trial in range(ORDER_TRIALS):
        base = s.topic(f"order{trial}")
        topics = [f"{base}/{i}" for i in range(count)]
        for i, topic in enumerate(topics):
            pub.publish(topic, f"r{i}".encode(), retain=True)
        overtaken += _marker_overtook(s, topics, f"{base}/#" if wildcard else topics[0])
        for topic in topics:
            pub.publish(topic, b"", retain=True)
    return {
        "in_order": overtaken == 0,  # in every trial (how many overtook varies from run to run)
        "trials": ORDER_TRIALS,
        "retained": count,
        "filter": "wildcard" if wildcard else "exact",
    }


def _mixed_qos_order(s: _Session) -> dict[str, Any]:
    """Batches of SUBSCRIBEs, then a QoS 1 sync marker (as the connector's subscribe does), then on each
    new topic a QoS 0 and a QoS 1 publish; a trial is one topic."""
    client = s.client()
    reversed_ = 0
    for batch in range(MIXED_QOS_TRIALS // MIXED_QOS_BATCH):
        topics = [s.topic(f"mixed{batch}/{i}") for i in range(MIXED_QOS_BATCH)]
        for topic in topics:
            client.subscribe(topic, wait=False)
        client.barrier()  # the broker handled (and acknowledged) every SUBSCRIBE before this marker
        pairs = [(unique("qos0").encode(), unique("qos1").encode()) for _ in topics]
        for topic, (first, second) in zip(topics, pairs, strict=True):
            client.publish(topic, first, qos=0)
            client.publish(topic, second, qos=1, wait=False)
        client.wait_for(
            lambda: all(client.count(a) > 0 and client.count(b) > 0 for a, b in pairs),  # noqa: B023
            "every publish",
        )
        reversed_ += sum(
            [m.payload for m in client.received(topic)] != list(pair)
            for topic, pair in zip(topics, pairs, strict=True)
        )
    return {"in_order": reversed_ == 0, "trials": MIXED_QOS_TRIALS}


def _replay_went_elsewhere(s: _Session, trial: int) -> bool:
    """One trial: did either of two exact subscribers get anything but its own retained message, once?

    The second client connects after the first one's SUBACK. Absence is judged after a barrier through
    the other subscriber.
    """
    pub = s.client()
    topics = [s.topic(f"own{trial}/{name}") for name in ("a", "b")]
    payloads = [unique("own").encode() for _ in topics]
    for topic, payload in zip(topics, payloads, strict=True):
        pub.publish(topic, payload, retain=True)
    first = s.client()
    first.subscribe(topics[0])
    second = s.client()
    second.subscribe(topics[1])
    wrong = False
    for client, other, payload in ((first, second, payloads[0]), (second, first, payloads[1])):
        client.wait_for(lambda: client.count(payload) > 0, "its own retained message")  # noqa: B023
        client.barrier(via=other)
        wrong = wrong or [m.payload for m in client.received()] != [payload]
    for topic in topics:
        pub.publish(topic, b"", retain=True)
    return wrong


def _retained_replay_own_topic(s: _Session) -> dict[str, Any]:
    wrong = sum(_replay_went_elsewhere(s, trial) for trial in range(REPLAY_TRIALS))
    return {"only_own_topic": wrong == 0, "trials": REPLAY_TRIALS}


def _empty_retained_clears(s: _Session) -> bool:
    pub = s.client()
    topic = s.topic("empty/x")
    pub.publish(topic, b"state", retain=True)
    pub.publish(topic, b"", retain=True)
    sub = s.client()
    sub.subscribe(topic)
    return not sub.poll(lambda: len(sub.received(topic)) > 0, ABSENCE_WAIT)


def _will(s: _Session) -> bool:
    watcher = s.client()
    topic = s.topic("will/x")
    watcher.subscribe(topic)
    dying = s.client(will=(topic, b"gone"))
    dying.abort()
    return watcher.poll(lambda: watcher.count(b"gone") > 0, 5.0)


def _retained_present(s: _Session, topic: str, payload: bytes) -> bool:
    """Whether a fresh subscriber to `topic` gets `payload` as retained state."""
    sub = s.client()
    try:
        sub.subscribe(topic)
        return sub.poll(lambda: sub.count(payload) > 0, ABSENCE_WAIT)
    finally:
        sub.close()
        s.clients.remove(sub)


def _expiry(s: _Session) -> bool:
    pub = s.client()
    topic = s.topic("expiry/x")
    pub.publish(topic, b"short-lived", retain=True, expiry=1)
    # The state must be gone within a few seconds of its 1 s lifetime: fresh subscribers ask until it is
    # (each one answers within milliseconds while the state is still there).
    deadline = time.monotonic() + 1.0 + EXPIRY_GRACE
    while time.monotonic() < deadline:
        if not _retained_present(s, topic, b"short-lived"):
            return True
    pub.publish(topic, b"", retain=True)
    return False


def measure_protocol(server: RunningBroker, protocol: Protocol) -> dict[str, Any]:
    """Every fact of `FACTS` for one protocol the broker accepts. Blocks for several seconds."""
    s = _Session(server, protocol)
    try:
        facts: dict[str, Any] = {"overlap_copies": _overlap(s)}
        facts["retained_to_exact"] = _retained_to(s, "exact")
        facts["retained_to_wildcard"] = _retained_to(s, "#")
        facts["live_retained_flag"] = _live_retained_flag(s)
        facts["dollar_subscribe"], facts["dollar_publish"], facts["dollar_roundtrip"] = _dollar(s)
        facts["marker_after_retained"] = _marker_after_retained(s, wildcard=facts["retained_to_wildcard"])
        facts["mixed_qos_order"] = _mixed_qos_order(s)
        facts["retained_replay_own_topic"] = _retained_replay_own_topic(s)
        facts["empty_retained_clears"] = _empty_retained_clears(s)
        facts["will_on_abrupt_close"] = _will(s)
        facts["message_expiry"] = _expiry(s) if protocol == "5" else "n/a (MQTT 5 only)"
        return facts
    finally:
        s.close()


def measure_broker(
    server: RunningBroker, version: str, protocols: tuple[Protocol, ...] = PROTOCOLS
) -> dict[str, Any]:
    """The whole truth table for one running broker (`version` is recorded as given)."""
    connect = {
        p: raw_connect(server.host, server.port, p, credentials=server.credentials).describe()
        for p in PROTOCOLS
    }
    anonymous = raw_connect(server.host, server.port, "3.1.1").describe()
    result: dict[str, Any] = {
        "broker": server.name,
        "version": version,
        "client": f"paho-mqtt {paho_version()}",
        "connect": connect,
        "connect_without_credentials": anonymous,
        "protocols": {},
    }
    for protocol in protocols:
        if connect[protocol] != "accepted":
            continue
        try:
            result["protocols"][protocol] = measure_protocol(server, protocol)
        except ProbeError as exc:
            raise ProbeError(f"{server.name} MQTT {protocol}: {exc}") from exc
    return result
