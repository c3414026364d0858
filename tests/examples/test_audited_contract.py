"""An example connector, written against public APIs only, passes the whole contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cascade.connectors.testing import ConnectorContract, Recorder

from .audited_connector import AuditedConnector, AuditedHarness, AuditEntry


# --8<-- [start:subclass]
class TestAuditedConnectorContract(ConnectorContract):
    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[AuditedHarness]:
        harness = AuditedHarness()
        yield harness
        await harness.aclose()


# --8<-- [end:subclass]


@pytest.mark.asyncio
async def test_the_audit_trail_records_what_the_application_did() -> None:
    harness = AuditedHarness()
    connector = await harness.new_connector(source="audited")
    assert isinstance(connector, AuditedConnector)
    async with connector.inner:
        received = Recorder()
        await connector.subscribe("jobs/+", received)
        await connector.publish("jobs/1", {"n": 1})
        await received.wait_for(1)
    assert connector.audit == [AuditEntry("subscribe", "jobs/+"), AuditEntry("publish", "jobs/1")]
