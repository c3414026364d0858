"""Test tools for Cascade connectors (``cascade-connector-testing``).

- `InMemoryBroker` / `InMemoryConnector`: a faithful, network-free fake of a connector, with fault
  injection (`InMemoryBroker.stop`, `start`, `drop`, `inject`) and inspection (`retained`, `history`,
  `settle`). Importing them does not import pytest.
- `ConnectorContract`: the pytest suite every connector passes; subclass it and provide a ``harness``
  fixture (`ContractHarness`; optional capabilities declared in ``capabilities`` as `Capability`
  members, implemented by `SupportsInjectRaw`, `SupportsDrop`, `SupportsOutage`,
  `SupportsPacketLimit`). It is imported (with pytest) on first use of its name.
- `eventually`, `Recorder`: helpers for asynchronous assertions.

The pytest plugin (``cascade.connectors.testing.plugin``) adds the ``memory_broker`` and
``memory_connector`` fixtures.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ._eventually import eventually
from ._harness import (
    ALL_CAPABILITIES,
    DEFAULT_PACKET_LIMIT,
    Capability,
    ContractHarness,
    InMemoryHarness,
    SupportsDrop,
    SupportsInjectRaw,
    SupportsOutage,
    SupportsPacketLimit,
)
from ._memory import (
    InMemoryBroker,
    InMemoryConnector,
    InMemorySubscription,
    PublishRecord,
    SettleTimeoutError,
)
from ._recorder import Recorder

if TYPE_CHECKING:
    from ._contract import ConnectorContract, ContractKit

_CONTRACT = "cascade.connectors.testing._contract"
_LAZY = frozenset({"ConnectorContract", "ContractKit"})

_pytest = sys.modules.get("pytest")
if _pytest is not None:  # under pytest: rewrite the contract's asserts for full assertion diffs
    _pytest.register_assert_rewrite(_CONTRACT)


def __getattr__(name: str) -> Any:
    """Import the contract suite (and pytest) only when one of its names is used."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import pytest

    if _CONTRACT not in sys.modules:
        pytest.register_assert_rewrite(_CONTRACT)
    return getattr(importlib.import_module(_CONTRACT), name)


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
    "SupportsPacketLimit",
    "DEFAULT_PACKET_LIMIT",
    "InMemoryHarness",
    "Recorder",
    "eventually",
]
