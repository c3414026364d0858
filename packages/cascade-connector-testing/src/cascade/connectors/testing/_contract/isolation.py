"""Promise 7 of docs/contract.md (Isolation from bad code and bad data): the contract tests that check it."""

from __future__ import annotations

__all__ = ["IsolationTests"]

import logging
from typing import Any

import pytest

from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
    stats_of,
)


class IsolationTests:
    """Promise 7 (isolation from bad code and bad data). A mixin of `ConnectorContract`."""

    @contract_test()
    async def test_a_raising_callback_does_not_stop_deliveries(
        self, contract: ContractKit, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Promise 7 (isolation): a raising callback is logged with the topic and counted; deliveries go on.

        Both the failing callback and a healthy one on the same connector keep receiving every
        message; `stats.callback_errors` counts each failure. If this fails, wrap each callback call in
        ``try/except Exception`` in the dispatcher, log with the topic, count, continue.
        """
        caplog.set_level(logging.WARNING)
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("raising")
        failures: list[int] = []
        healthy = Recorder("healthy")

        async def broken(_topic: str, payload: dict[str, Any]) -> None:
            failures.append(payload["i"])
            raise RuntimeError("callback bug")

        await subscriber.subscribe(topic, broken)
        await subscriber.subscribe(topic, healthy)
        for i in range(3):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(healthy, 3)
        await contract.eventually(lambda: len(failures) == 3)
        assert failures == [0, 1, 2]
        assert healthy.payloads == [{"i": 0}, {"i": 1}, {"i": 2}]
        await contract.eventually(lambda: stats_of(subscriber).callback_errors == 3)
        assert any(
            topic in record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
        ), "the callback error was not logged with the topic"

    @contract_test()
    async def test_malformed_inbound_messages_are_skipped_logged_and_counted(
        self, contract: ContractKit, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Promise 7 (isolation): inbound bytes that are not a UTF-8 JSON object are skipped, logged, counted.

        A foreign client sends invalid UTF-8, invalid JSON, NaN and JSON that is not an object; the
        callback never sees them, `stats.malformed` counts each, the log names the topic, and later
        valid messages (and an empty payload, which is ``{}``) still arrive. Needs `Capability.INJECT_RAW`.
        If this fails, decode with `decode_payload` inside ``try/except PayloadError``.
        """
        caplog.set_level(logging.WARNING)
        inject = contract.need_inject_raw()
        subscriber = await contract.connected()
        topic = contract.topic("malformed")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        bad = [b"\xff\xfe\xfd", b"{not json", b"[1, 2]", b'"text"', b"42", b"null", b'{"x": NaN}']
        for data in bad:
            await inject.inject_raw(topic, data)
        await inject.inject_raw(topic, b'{"ok": true}')
        await inject.inject_raw(topic, b"")
        await contract.wait_for(received, 2)
        assert received.payloads == [{"ok": True}, {}]
        await contract.eventually(lambda: stats_of(subscriber).malformed == len(bad))
        assert any(
            topic in record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
        ), "the malformed message was not logged with the topic"

    @contract_test()
    async def test_a_callback_error_is_logged_at_error_with_the_topic_and_traceback(
        self, contract: ContractKit, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Promise 7 (isolation): a raising callback produces ONE log record a user can act on.

        On a logger named ``contract_logger`` (class attribute, default ``cascade.connectors``) or a
        child of it, at level ERROR, with the topic in the message and ``exc_info`` holding the
        exception the callback raised (so the traceback is logged). If this fails, log with
        ``logger.exception("... %r ...", topic)`` in the dispatcher's ``except Exception``.
        """
        caplog.set_level(logging.DEBUG)
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("logged")
        problem = f"callback bug {contract.uid}"

        async def broken(_topic: str, _payload: dict[str, Any]) -> None:
            raise RuntimeError(problem)

        healthy = Recorder("healthy")
        await subscriber.subscribe(topic, broken)
        await subscriber.subscribe(topic, healthy)
        await publisher.publish(topic, {"n": 1})
        await contract.wait_for(healthy, 1)
        await contract.eventually(lambda: stats_of(subscriber).callback_errors == 1)

        def about_it() -> list[logging.LogRecord]:
            return [
                record
                for record in caplog.records
                if record.exc_info is not None and str(record.exc_info[1]) == problem
            ]

        await contract.eventually(lambda: len(about_it()) >= 1, message="the callback error was not logged")
        records = about_it()
        assert len(records) == 1, f"the callback error was logged {len(records)} times"
        record = records[0]
        prefix = str(getattr(self, "contract_logger", "cascade.connectors"))
        assert record.name == prefix or record.name.startswith(f"{prefix}."), (
            f"logged on {record.name!r}, not on {prefix!r} or a child of it"
        )
        assert record.levelno == logging.ERROR, f"logged at {record.levelname}, not ERROR"
        assert topic in record.getMessage(), f"the message {record.getMessage()!r} does not name the topic"
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)
