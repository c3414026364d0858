"""Test tools for Cascade connectors: an in-memory broker and connector, and the contract suite.

Work in progress: the harness interface of the contract suite is published first.
"""

from ._eventually import eventually
from ._harness import ContractHarness, SupportsDrop, SupportsInjectRaw, SupportsOutage

__all__ = [
    "ContractHarness",
    "SupportsInjectRaw",
    "SupportsDrop",
    "SupportsOutage",
    "eventually",
]
