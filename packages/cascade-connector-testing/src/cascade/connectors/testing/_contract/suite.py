"""`ConnectorContract`: every promise module composed into the one suite connector authors subclass."""

from __future__ import annotations

__all__ = ["ConnectorContract"]

from .base import ContractBase
from .delivery import DeliveryTests
from .inbound import InboundTests
from .isolation import IsolationTests
from .lifecycle import LifecycleTests
from .observability import ObservabilityTests
from .payloads import PayloadTests
from .presence import PresenceTests
from .qos import QosTests
from .resilience import ResilienceTests
from .retained import RetainedTests
from .stop import GracefulStopTests
from .topics import TopicTests
from .unsubscribe import UnsubscribeTests


class ConnectorContract(
    LifecycleTests,
    PayloadTests,
    TopicTests,
    DeliveryTests,
    RetainedTests,
    UnsubscribeTests,
    IsolationTests,
    QosTests,
    GracefulStopTests,
    PresenceTests,
    ResilienceTests,
    ObservabilityTests,
    InboundTests,
    ContractBase,
):
    """The contract every Cascade connector passes: the numbered promises of docs/contract.md.

    Subclass it as ``class TestXyzContract(ConnectorContract)`` and provide a ``harness`` fixture
    returning a `ContractHarness`; declare its optional capabilities in ``harness.capabilities``
    (`Capability`). Do not override the ``test_*`` methods (`test_contract_tests_are_not_overridden`
    fails if you do): declare a promise your connector cannot keep in ``known_deviations``
    (test name -> reason) instead. Each test's docstring names the promise and what to fix.

    Set ``contract_timeout_scale`` on the subclass to stretch (slow CI) or shrink every timeout.
    """
