"""`ContractBase`: the ``contract`` fixture, known deviations and the override guard.

The promise modules (lifecycle, payloads, ...) are mixins of test methods; `ConnectorContract`
composes them on top of this base.
"""

from __future__ import annotations

__all__ = ["ContractBase", "KNOWN_DEVIATIONS_KEY", "RecordedDeviation", "contract_test_names"]

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar, NamedTuple

import pytest
import pytest_asyncio

from .._harness import ContractHarness
from .kit import ContractKit


class RecordedDeviation(NamedTuple):
    """A known deviation that ran: the test's node id and the declared reason."""

    nodeid: str
    reason: str


KNOWN_DEVIATIONS_KEY = pytest.StashKey[list[RecordedDeviation]]()
"""Where the ``contract`` fixture records the deviations that ran (the plugin reports them)."""


def contract_test_names(contract_class: type) -> frozenset[str]:
    """The names of the contract tests of `contract_class` (defined by the contract, not a subclass)."""
    return frozenset(
        name
        for owner in contract_class.__mro__
        if getattr(owner, "__module__", "").startswith(__package__ or "")
        for name in vars(owner)
        if name.startswith("test")
    )


class ContractBase:
    """The fixture and the guard shared by every promise module (see `ConnectorContract`)."""

    contract_timeout_scale: ClassVar[float] = 1.0
    """Multiplies every timeout and wait of the suite."""

    contract_logger: ClassVar[str] = "cascade.connectors"
    """The logger (or an ancestor of it) the connector logs callback errors on (promise 7)."""

    known_deviations: ClassVar[Mapping[str, str]] = {}
    """Contract tests this connector is KNOWN to fail: test name -> reason (shown in the report).

    Each such test still runs and is expected to fail (``xfail(strict=True)``): when the connector
    (or its backend) starts keeping the promise, the test passes, the run fails, and the entry must go.
    A harness may declare ``known_deviations`` too (for deviations of one backend); both are merged.
    """

    @pytest_asyncio.fixture
    async def contract(
        self, harness: ContractHarness, request: pytest.FixtureRequest
    ) -> AsyncIterator[ContractKit]:
        """The per-test kit over the harness; disconnects what the test made."""
        if not isinstance(harness, ContractHarness):
            pytest.fail(
                f"the harness fixture returned {harness!r}, which has no async new_connector(**options)",
                pytrace=False,
            )
        deviations = self._deviations(harness)
        name = request.function.__name__
        if name in deviations:
            reason = f"known deviation: {deviations[name]}"
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
            request.config.stash.setdefault(KNOWN_DEVIATIONS_KEY, []).append(
                RecordedDeviation(request.node.nodeid, deviations[name])
            )
        try:
            kit = ContractKit(harness, scale=self.contract_timeout_scale)
        except TypeError as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            yield kit
        finally:
            await kit.aclose()

    def _deviations(self, harness: object) -> dict[str, str]:
        declared = {**type(self).known_deviations, **getattr(harness, "known_deviations", {})}
        problems = _check_deviations(type(self), declared)
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)
        return declared

    def test_contract_tests_are_not_overridden(self) -> None:
        """Guard: a subclass must not replace contract tests (or the ``contract`` fixture).

        If this fails, delete the overriding methods from your subclass: a connector that cannot keep
        a promise must fix the connector, or declare the test in ``known_deviations`` with the reason
        (it then runs, is expected to fail, and is listed in the run's summary); a test must never be
        quietly replaced. Also fails when ``known_deviations`` names no contract test or gives no reason.
        """
        base = _contract_root(type(self))
        guarded = contract_test_names(base) | {"contract"}
        overridden = [
            f"{owner.__qualname__}.{name}"
            for name in sorted(guarded)
            for owner in [next(c for c in type(self).__mro__ if name in vars(c))]
            if owner not in base.__mro__
        ]
        assert not overridden, (
            f"{type(self).__name__} overrides contract tests: {overridden}; declare a test you cannot "
            "pass in known_deviations instead"
        )
        problems = _check_deviations(type(self), dict(type(self).known_deviations))
        assert not problems, "; ".join(problems)


def _contract_root(cls: type) -> type:
    """The composed contract class (the last class in the MRO defined by this package's suite)."""
    for owner in cls.__mro__:
        if owner.__module__ == f"{__package__}.suite":
            return owner
    return ContractBase


def _check_deviations(cls: type, declared: Mapping[str, object]) -> list[str]:
    names = contract_test_names(_contract_root(cls))
    problems = []
    for test, reason in declared.items():
        if test not in names:
            problems.append(f"known_deviations names {test!r}, which is not a contract test")
        elif test == "test_contract_tests_are_not_overridden":
            problems.append("the guard test cannot be a known deviation")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"known_deviations[{test!r}] needs a reason (a non-empty string)")
    return problems
