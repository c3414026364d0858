"""The benchmark harness itself (tests/benchmarks): statistics, verdicts, the table, and the loss checks.

The figures themselves run in CI through ``hatch run bench-smoke``; here the parts that decide what a
figure means are checked, including that the arrival counter really notices lost messages. No
wall-clock thresholds.
"""

from __future__ import annotations

import json
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # the benchmarks are run as ``python -m tests.benchmarks`` from the root
    sys.path.insert(0, str(_ROOT))

from tests.benchmarks import _rabbitmq  # noqa: E402
from tests.benchmarks.__main__ import FIGURES, _parse, run_failed  # noqa: E402
from tests.benchmarks._bench import SMOKE, Bench, Inbox, percentile  # noqa: E402
from tests.benchmarks._broker import ArrivalCounter, BenchError, c_publish, unique  # noqa: E402
from tests.benchmarks._clients import PahoPublisher  # noqa: E402
from tests.benchmarks._connectors import mqtt_factory  # noqa: E402
from tests.benchmarks._fig_backlog import figure_backlog, sized_payloads, takes_max_inbound  # noqa: E402
from tests.benchmarks._fig_inbound import fanin_run, inbound_run, record_delivery  # noqa: E402
from tests.benchmarks._fig_memory import figure_memory  # noqa: E402
from tests.benchmarks._fig_throughput import measure_throughput, rabbitmq_rows  # noqa: E402
from tests.benchmarks._report import Row, Series, Target, render_table  # noqa: E402
from tests.benchmarks._subscribers import (  # noqa: E402
    ConnectorSubscriber,
    PahoSubscriber,
    Subscriber,
    check_per_publisher,
)
from tests.benchmarks._workload import (  # noqa: E402
    check_sequence,
    encoded,
    seq_of,
    seq_of_line,
    telemetry_payloads,
)
from tests.brokers.servers._base import BrokerNotInstalledError  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Pure parts


def test_series_reports_median_min_max() -> None:
    series = Series("x", "us", [3.0, 1.0, 2.0])
    assert (series.median, series.min, series.max) == (2.0, 1.0, 3.0)
    assert series.as_dict()["samples"] == [3.0, 1.0, 2.0]


def test_empty_series_is_not_measured() -> None:
    row = Row("f", Series("x", "us"), Series("ref", "us", [1.0]), target=Target("<=", 2.0))
    assert row.status == "n/a"
    assert row.as_dict()["ratio"] is None


def test_ratio_and_verdict_for_costs_and_throughputs() -> None:
    cost = Row("f", Series("x", "us", [3.0, 3.0, 3.0]), Series("ref", "us", [2.0]), target=Target("<=", 2.0))
    assert cost.ratio == pytest.approx(1.5)
    assert cost.status == "met"
    slow = Row("f", Series("x", "msg/s", [9.0]), Series("ref", "msg/s", [10.0]), target=Target(">=", 1.0))
    assert slow.status == "MISSED"
    info = Row("f", Series("x", "msg/s", [9.0]), Series("ref", "msg/s", [10.0]))
    assert info.status == "info"


def test_absolute_bound_judges_the_worst_run() -> None:
    row = Row("f", Series("resume", "s", [0.2, 0.3, 1.4]), absolute=1.0, target=Target("<=", 1.0, on="max"))
    assert row.ratio == pytest.approx(1.4)
    assert row.status == "MISSED"


def test_lost_messages_on_either_side_fail_a_target() -> None:
    measured = Series("x", "msg/s", [20.0], problems=["3 lost"])
    assert Row("f", measured, Series("ref", "msg/s", [10.0]), target=Target(">=", 1.0)).status == "MISSED"
    reference = Series("ref", "msg/s", [10.0], problems=["1 duplicated"])
    row = Row("f", Series("x", "msg/s", [20.0]), reference, target=Target(">=", 1.0))
    assert row.status == "MISSED"
    assert row.problems == ["ref: 1 duplicated"]


def test_table_has_every_row_and_the_verdicts() -> None:
    rows = [
        Row(
            "1. cost",
            Series("pub", "us", [1.0, 2.0, 3.0]),
            Series("dumps", "us", [1.0]),
            target=Target("<=", 2.0),
        ),
        Row("6. resume", Series("first", "s", [0.5]), absolute=1.0, target=Target("<=", 1.0, on="max")),
    ]
    table = render_table(rows).splitlines()
    assert len(table) == 4
    assert "2.00 [1.00..3.00] us" in table[2]
    assert "met" in table[2]
    assert "<= 1 s (max)" in table[3]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([5.0], 99) == 5.0


def test_sequence_check_counts_loss_duplicates_reordering_and_strays() -> None:
    assert check_sequence([0, 1, 2], 3).ok
    delivery = check_sequence([0, 2, 1, 1, 7, -1], 4)
    assert (delivery.lost, delivery.duplicates, delivery.reordered, delivery.foreign) == (1, 1, 1, 2)
    assert delivery.problems() == ["1 lost", "1 duplicated", "1 out of order", "2 unexpected"]


def test_payloads_are_realistic_numbered_telemetry() -> None:
    payloads = telemetry_payloads(3)
    assert [seq_of(p) for p in payloads] == [0, 1, 2]
    wire = encoded(payloads[2])
    assert 200 <= len(wire) <= 300
    assert seq_of_line(wire) == 2
    assert seq_of_line(b"not json") == -1
    assert json.loads(wire)["body"]["type"] == "TaskStateEvent"


@pytest.mark.asyncio
async def test_inbox_completes_and_checks_what_arrived() -> None:
    inbox = Inbox(3)
    payloads = telemetry_payloads(3)
    for payload in (payloads[0], {"not": "telemetry"}, payloads[2]):
        await inbox.callback("t", payload)
    assert await inbox.wait(idle_timeout=1.0)
    assert inbox.last_arrival > 0
    delivery = inbox.delivery()
    assert (delivery.lost, delivery.foreign) == (1, 1)


@pytest.mark.asyncio
async def test_inbox_gives_up_when_nothing_more_arrives() -> None:
    inbox = Inbox(2)
    await inbox.callback("t", telemetry_payloads(1)[0])
    assert not await inbox.wait(idle_timeout=0.1)
    assert inbox.delivery().lost == 1


def test_documented_commands_are_real() -> None:
    scripts = tomllib.loads((_ROOT / "hatch.toml").read_text())["envs"]["default"]["scripts"]
    assert scripts["bench"].startswith("python -m tests.benchmarks")
    assert "--smoke" in scripts["bench-smoke"]
    page = (_ROOT / "docs" / "performance.md").read_text()
    commands = [line[2:].split("#")[0] for line in page.splitlines() if line.startswith("$ hatch run bench")]
    assert len(commands) >= 5
    for command in commands:
        words = shlex.split(command)
        args = [w for w in words[3:] if w != ">" and not w.endswith(".json")]
        if words[2] == "bench-smoke":
            args.append("--smoke")
        _parse(args)  # argparse exits on an unknown option or figure
    for name in FIGURES:
        assert name in page


# ---------------------------------------------------------------------------------------------
# Against a real broker: the throughput harness sees every message, and notices missing ones.


def _bench(server: MosquittoServer) -> Bench:
    return Bench(sizes=SMOKE, server=server, quiet=True)


@pytest.mark.mosquitto
@pytest.mark.asyncio
@pytest.mark.parametrize("qos", [0, 1])
async def test_throughput_run_counts_every_message(mosquitto: MosquittoServer, qos: int) -> None:
    payloads = telemetry_payloads(200)
    run = await measure_throughput(_bench(mosquitto), PahoPublisher(mosquitto, window=8), payloads, qos)
    assert run.complete
    assert run.delivery.ok, run.delivery.problems()
    assert run.delivery.received == 200
    assert run.rate > 0


@pytest.mark.mosquitto
def test_arrival_counter_notices_missing_messages(mosquitto: MosquittoServer) -> None:
    topic = unique("bench-test/counter")
    counter = ArrivalCounter(mosquitto, topic, expected=3, qos=1)
    counter.start()
    try:
        for seq in (0, 2):
            c_publish(mosquitto, topic, message=encoded(telemetry_payloads(3)[seq]))
        arrivals = counter.wait(idle_timeout=0.3)
    finally:
        counter.close()
    assert not arrivals.complete
    assert arrivals.delivery.lost == 1
    assert arrivals.delivery.received == 2


@pytest.mark.mosquitto
@pytest.mark.asyncio
async def test_figure_5_measures_each_codec_against_its_own_round_trip(mosquitto: MosquittoServer) -> None:
    bench = _bench(mosquitto)
    rows = await figure_memory(bench)
    assert bench.errors == []
    assert [(row.measured.label, row.target is not None) for row in rows] == [
        ("InMemoryConnector pair per message, stdlib codec (json)", True),
        ("MqttConnector pair per message, stdlib codec (json)", False),
        ("bare asyncio hand-off per message, stdlib codec (json)", False),
        ("InMemoryConnector pair per message, fast codec (msgspec)", True),
        ("MqttConnector pair per message, fast codec (msgspec)", False),
        ("bare asyncio hand-off per message, fast codec (msgspec)", False),
    ]
    for row in rows:
        assert row.reference is not None
        codec = row.measured.label.split(", ", 1)[1]
        assert row.reference.label == f"encode + decode, {codec}"  # the same codec as the connector
        assert len(row.measured.samples) == SMOKE.repeats
        assert row.measured.problems == []
        assert row.status in ("met", "MISSED", "info")


# ---------------------------------------------------------------------------------------------
# The subscriber side (figures 7 to 9)


def test_per_publisher_check_counts_each_publisher_and_strays() -> None:
    arrivals: list[tuple[object, object]] = [
        ("a", "task-0000000"),
        ("b", "task-0000001"),
        ("a", "task-0000002"),
        ("b", "task-0000000"),  # b out of order
        ("a", "task-0000001"),  # a out of order
        ("zz", "task-0000000"),  # a publisher nobody expected
        (None, None),  # unreadable
    ]
    deliveries = check_per_publisher(arrivals, {"a": 3, "b": 3})
    assert (deliveries["a"].lost, deliveries["a"].reordered, deliveries["a"].foreign) == (0, 1, 2)
    assert (deliveries["b"].lost, deliveries["b"].reordered, deliveries["b"].foreign) == (1, 1, 0)
    assert check_per_publisher([("a", "task-0000000")], {"a": 1})["a"].ok


def test_backlog_payloads_have_the_asked_wire_size() -> None:
    payloads = sized_payloads(3, 1_024)
    assert [len(encoded(p)) for p in payloads] == [1_024, 1_024, 1_024]
    assert [seq_of(p) for p in payloads] == [0, 1, 2]
    with pytest.raises(BenchError):
        sized_payloads(1, 10)


@pytest.mark.mosquitto
@pytest.mark.asyncio
@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("kind", ["connector", "paho"])
async def test_inbound_run_counts_every_message(mosquitto: MosquittoServer, qos: int, kind: str) -> None:
    subscriber: Subscriber = (
        ConnectorSubscriber("MqttConnector", mqtt_factory(mosquitto))
        if kind == "connector"
        else PahoSubscriber(mosquitto)
    )
    rate, delivery = await inbound_run(_bench(mosquitto), subscriber, 200, qos)
    assert delivery.ok, delivery.problems()
    assert delivery.received == 200
    assert rate > 0


@pytest.mark.mosquitto
@pytest.mark.asyncio
async def test_subscriber_notices_missing_messages(mosquitto: MosquittoServer) -> None:
    topic = unique("bench-test/inbound")
    subscriber = ConnectorSubscriber("MqttConnector", mqtt_factory(mosquitto))
    await subscriber.setup(topic, 3)
    try:
        for seq in (0, 2):
            c_publish(mosquitto, topic, message=encoded(telemetry_payloads(3)[seq]))
        _, complete = await subscriber.wait(idle_timeout=0.3)
    finally:
        await subscriber.close()
    assert not complete
    delivery = check_per_publisher(subscriber.arrivals, {"run-7f3a9c2e": 3})["run-7f3a9c2e"]
    assert (delivery.received, delivery.lost) == (2, 1)


@pytest.mark.mosquitto
@pytest.mark.asyncio
async def test_fanin_checks_every_publisher(mosquitto: MosquittoServer) -> None:
    rate, deliveries = await fanin_run(_bench(mosquitto), PahoSubscriber(mosquitto))
    assert len(deliveries) == SMOKE.fanin_publishers
    for delivery in deliveries.values():
        assert delivery.ok, delivery.problems()
        assert delivery.received == SMOKE.fanin_messages
    assert rate > 0


@pytest.mark.mosquitto
@pytest.mark.asyncio
async def test_backlog_figure_compares_the_peak_with_the_bound(mosquitto: MosquittoServer) -> None:
    bench = _bench(mosquitto)
    rows = await figure_backlog(bench)
    assert [row.measured.label for row in rows] == ["peak heap growth, qos0", "peak heap growth, qos1"]
    for row in rows:
        assert row.absolute == pytest.approx(SMOKE.backlog_max_inbound * SMOKE.backlog_payload_bytes / 1e6)
        assert len(row.measured.samples) == SMOKE.repeats
        assert row.measured.samples[0] > 0
        assert row.status in ("met", "MISSED")
        assert ("max_inbound=" in row.note) == takes_max_inbound()


class _Counted:
    def __init__(self, dropped: int | None) -> None:
        self.dropped_inbound = dropped


def test_drops_the_connector_counted_miss_the_target_but_are_not_incorrect() -> None:
    short = check_sequence([0, 2], 3)  # one lost
    counted = Series("x", "msg/s", [20.0])
    record_delivery(counted, [short], short.problems(), _Counted(1))  # type: ignore[arg-type]
    assert counted.problems == []
    assert counted.counted_drops == ["1 dropped and counted in stats.dropped_inbound"]
    row = Row("f", counted, Series("ref", "msg/s", [10.0]), target=Target(">=", 1.0))
    assert (row.status, row.problems) == ("MISSED", [])
    assert "1 dropped and counted" in render_table([row])
    silent = Series("x", "msg/s", [20.0])
    record_delivery(silent, [short], short.problems(), _Counted(0))  # type: ignore[arg-type]
    assert silent.problems == ["1 lost"]
    reordered = check_sequence([1, 0, 3], 4)  # lost one and reordered: never excused
    other = Series("x", "msg/s", [20.0])
    record_delivery(other, [reordered], reordered.problems(), _Counted(1))  # type: ignore[arg-type]
    assert other.problems == ["1 lost", "1 out of order"]


@pytest.mark.mosquitto
def test_a_row_absent_on_purpose_is_said_and_does_not_fail_the_run(mosquitto: MosquittoServer) -> None:
    bench = _bench(mosquitto)
    absent = Row("f", Series("x", "msg/s"), Series("ref", "msg/s"), note="why", absent="why")
    assert absent.status == "n/a"
    assert not run_failed(bench, [absent], strict=True)
    assert "not measured" in render_table([absent])
    unmeasured = Row("f", Series("x", "msg/s"), Series("ref", "msg/s", [1.0]), note="context")
    assert run_failed(bench, [unmeasured], strict=False)


@pytest.mark.mosquitto
@pytest.mark.asyncio
async def test_rabbitmq_rows_say_why_they_are_not_measured(
    mosquitto: MosquittoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smoke = Bench(sizes=SMOKE, server=mosquitto, smoke=True, quiet=True)
    rows = await rabbitmq_rows(smoke, telemetry_payloads(10))  # smoke sizes: no node is started
    assert [row.figure for row in rows] == ["2. throughput qos0"] * 2 + ["2. throughput qos1"] * 2
    assert {row.absent for row in rows} == {_rabbitmq.rabbitmq_absent(True)}
    assert all(row.note == row.absent and row.status == "n/a" for row in rows)
    assert not run_failed(smoke, rows, strict=True)

    def missing() -> str:
        raise BrokerNotInstalledError("rabbitmq-server is not installed")

    monkeypatch.setattr(_rabbitmq, "rabbitmq_version", missing)
    assert _rabbitmq.rabbitmq_absent(False) == "not measured: rabbitmq-server not installed"
    rows = await rabbitmq_rows(_bench(mosquitto), telemetry_payloads(10))
    assert {row.note for row in rows} == {"not measured: rabbitmq-server not installed"}
    assert "not measured: rabbitmq-server not installed" in render_table(rows)
