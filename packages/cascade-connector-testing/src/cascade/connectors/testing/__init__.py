"""Test tools for Cascade connectors (``cascade-connector-testing``).

- `InMemoryBroker` / `InMemoryConnector`: a faithful, network-free fake of a connector, with fault
  injection (`InMemoryBroker.stop`, `start`, `drop`, `inject`) and inspection (`retained`, `history`,
  `settle`).
- `ConnectorContract`: the pytest suite every connector passes; subclass it and provide a ``harness``
  fixture (`ContractHarness`, plus optional `SupportsInjectRaw`, `SupportsDrop`, `SupportsOutage`).
- `eventually`, `Recorder`: helpers for asynchronous assertions.

The pytest plugin (``cascade.connectors.testing.plugin``) adds the ``memory_broker`` and
``memory_connector`` fixtures.
"""

from ._eventually import eventually
from ._harness import ContractHarness, InMemoryHarness, SupportsDrop, SupportsInjectRaw, SupportsOutage
from ._memory import (
    InMemoryBroker,
    InMemoryConnector,
    InMemorySubscription,
    PublishRecord,
    SettleTimeoutError,
)
from ._recorder import Recorder

__all__ = [
    "InMemoryBroker",
    "InMemoryConnector",
    "InMemorySubscription",
    "PublishRecord",
    "SettleTimeoutError",
    "ContractHarness",
    "SupportsInjectRaw",
    "SupportsDrop",
    "SupportsOutage",
    "InMemoryHarness",
    "Recorder",
    "eventually",
]
