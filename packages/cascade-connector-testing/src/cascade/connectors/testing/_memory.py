"""The in-memory fake in one import: `InMemoryBroker`, `InMemoryConnector` and what they return.

Network-free and faithful to docs/contract.md; built on the shared connector core
(``cascade.connectors.protocol.core``). The parts live in `_broker`, `_connector`, `_subscription`
and `_records`; none of them imports pytest.
"""

from __future__ import annotations

__all__ = [
    "InMemoryBroker",
    "InMemoryConnector",
    "InMemorySubscription",
    "PublishRecord",
    "SettleTimeoutError",
]

from ._broker import InMemoryBroker
from ._connector import InMemoryConnector
from ._records import PublishRecord, SettleTimeoutError
from ._subscription import InMemorySubscription
