"""The shared connector core: what every Cascade connector needs, written once (standard library only).

Public for authors of new connectors; both connectors of this repository are built on it, so they
keep the promises of docs/contract.md the same way by construction:

- `ConnectorState` / `StateMachine`: the lifecycle with its legal transitions checked in one place.
- `Backoff`: capped exponential reconnect delays with full jitter.
- `OutboundBuffer` / `Outgoing`: the bounded outbound queue, its QoS 0 overflow policy and counters.
- `InboundQueue`: received messages not yet handed to callbacks, bounded by ``max_inbound``.
- `Delivery`: decoding, callback isolation, the callback-error log record and the delivery counters.
- `Presence` / `default_source`: presence payloads and the default ``{hostname}-{pid}-{random}``.
- `check_int`, `check_seconds`, `check_delay_range`: settings validation (NaN refused everywhere).
- `ConnectOnEnter` / `ContextGuard`: ``async with`` that is reusable but not re-entrant (`ReentryError`).
- `TopicCache`: the validated-publish-topic cache of the hot path.
"""

from .backoff import Backoff
from .delivery import Delivery, Target, check_callback, invoke
from .guard import ConnectOnEnter, ContextGuard, ReentryError
from .inbound import InboundQueue
from .outbound import OutboundBuffer, Outgoing, unsent_at_disconnect
from .presence import Presence, default_source, host_segment
from .settings import check_delay_range, check_int, check_seconds
from .state import ConnectorState, IllegalTransitionError, StateMachine
from .topiccache import TopicCache

__all__ = [
    "Backoff",
    "ConnectOnEnter",
    "ConnectorState",
    "ContextGuard",
    "Delivery",
    "IllegalTransitionError",
    "InboundQueue",
    "OutboundBuffer",
    "Outgoing",
    "Presence",
    "ReentryError",
    "StateMachine",
    "Target",
    "TopicCache",
    "check_callback",
    "check_delay_range",
    "check_int",
    "check_seconds",
    "default_source",
    "host_segment",
    "invoke",
    "unsent_at_disconnect",
]
