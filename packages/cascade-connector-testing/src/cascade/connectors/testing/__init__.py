"""Test tools for Cascade connectors (``cascade-connector-testing``).

- `InMemoryBroker` / `InMemoryConnector`: a faithful, network-free fake of a connector, with fault
  injection (`InMemoryBroker.stop`, `start`, `drop`, `inject`) and inspection (`retained`, `history`,
  `settle`).
- `ConnectorContract`: the pytest suite every connector passes; subclass it and provide a ``harness``
  fixture (`ContractHarness`; optional capabilities declared in ``capabilities`` as `Capability`
  members, implemented by `SupportsInjectRaw`, `SupportsDrop`, `SupportsOutage`).
- `eventually`, `Recorder`: helpers for asynchronous assertions.

The pytest plugin (``cascade.connectors.testing.plugin``) adds the ``memory_broker`` and
``memory_connector`` fixtures.
"""

import pytest

# Rewrite the asserts of the contract suite so connector authors get full assertion diffs.
pytest.register_assert_rewrite("cascade.connectors.testing._contract")

from ._contract import ConnectorContract, ContractKit  # noqa: E402
from ._eventually import eventually  # noqa: E402
from ._harness import (  # noqa: E402
    ALL_CAPABILITIES,
    Capability,
    ContractHarness,
    InMemoryHarness,
    SupportsDrop,
    SupportsInjectRaw,
    SupportsOutage,
)
from ._memory import (  # noqa: E402
    InMemoryBroker,
    InMemoryConnector,
    InMemorySubscription,
    PublishRecord,
    SettleTimeoutError,
)
from ._recorder import Recorder  # noqa: E402

__all__ = [
    "InMemoryBroker",
    "InMemoryConnector",
    "InMemorySubscription",
    "PublishRecord",
    "SettleTimeoutError",
    "ConnectorContract",
    "ContractKit",
    "ContractHarness",
    "Capability",
    "ALL_CAPABILITIES",
    "SupportsInjectRaw",
    "SupportsDrop",
    "SupportsOutage",
    "InMemoryHarness",
    "Recorder",
    "eventually",
]
