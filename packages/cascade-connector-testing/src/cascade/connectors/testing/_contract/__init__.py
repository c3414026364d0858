"""The contract suite, one module per promise of docs/contract.md, composed in `ConnectorContract`.

Subclass `ConnectorContract` in a test module and provide one fixture, ``harness`` (a
`ContractHarness`)::

    class TestMyConnectorContract(ConnectorContract):
        @pytest_asyncio.fixture
        async def harness(self) -> AsyncIterator[MyHarness]:
            harness = MyHarness()
            yield harness
            await harness.aclose()

Every test uses only the public `Connector` API plus the declared harness capabilities, so a test
means the same thing for every connector. Every test is bounded by a timeout of its own.
"""

from .base import RecordedDeviation, contract_test_names
from .kit import ContractKit
from .suite import ConnectorContract

__all__ = ["ConnectorContract", "ContractKit", "RecordedDeviation", "contract_test_names"]
