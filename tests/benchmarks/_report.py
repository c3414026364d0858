"""Results of a benchmark run: repeated samples, targets, the table and the JSON document.

Every row compares a measured series with a reference series taken in the same run (or with an
absolute bound where the contract states one, such as "delivery resumes within 1 s").
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

Statistic = Literal["median", "max"]


@dataclass(slots=True)
class Series:
    """Repeated measurements of one quantity (one sample per run); `unit` is for display."""

    label: str
    unit: str
    samples: list[float] = field(default_factory=list)
    # What went wrong in some run (messages lost, timeouts); an empty list means clean.
    problems: list[str] = field(default_factory=list)
    # Messages the subject dropped by design and counted (QoS 0 beyond a configured bound): the row
    # is not met, but the run is not incorrect (nothing was lost silently).
    counted_drops: list[str] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Record one run's value."""
        self.samples.append(value)

    @property
    def median(self) -> float:
        """The median over runs (NaN when nothing was measured)."""
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def min(self) -> float:
        """The smallest run (NaN when nothing was measured)."""
        return min(self.samples) if self.samples else float("nan")

    @property
    def max(self) -> float:
        """The largest run (NaN when nothing was measured)."""
        return max(self.samples) if self.samples else float("nan")

    def stat(self, which: Statistic) -> float:
        """The median or the max."""
        return self.median if which == "median" else self.max

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "unit": self.unit,
            "median": _finite(self.median),
            "min": _finite(self.min),
            "max": _finite(self.max),
            "samples": list(self.samples),
            "problems": list(self.problems),
            "counted_drops": list(self.counted_drops),
        }


@dataclass(frozen=True, slots=True)
class Target:
    """`ratio op value`: for throughput ``>=``, for costs and latencies ``<=``.

    `on` names the statistic of the measured series that is judged (``max`` for "within 1 s" bounds).
    """

    op: Literal["<=", ">="]
    value: float
    on: Statistic = "median"

    def met_by(self, ratio: float) -> bool:
        """Whether `ratio` satisfies the target (NaN never does)."""
        if ratio != ratio:  # NaN
            return False
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def describe(self, unit: str = "x") -> str:
        """``<= 1.2x``, or with an absolute bound ``<= 1 s (max)``."""
        suffix = " (max)" if self.on == "max" else ""
        number = f"{self.value:g}x" if unit == "x" else f"{self.value:g} {unit}"
        return f"{self.op} {number}{suffix}"


@dataclass(slots=True)
class Row:
    """One line of the table.

    With a `reference` series the ratio is measured/reference (medians, or the measured max when the
    target says so); with `absolute` instead, the ratio is measured/absolute (for fixed bounds).
    A row with problems in either series is never met (lost or duplicated messages), nor one whose
    measured series dropped messages by design (`Series.counted_drops`).
    """

    figure: str
    measured: Series
    reference: Series | None = None
    absolute: float | None = None
    target: Target | None = None
    note: str = ""
    # Why a context row was not measured on purpose (its broker is not installed, smoke sizes): the
    # row says so in its note and, unlike any other unmeasured row, does not fail the run.
    absent: str = ""

    @property
    def ratio(self) -> float:
        """measured / reference (NaN when there is nothing to compare)."""
        which: Statistic = self.target.on if self.target is not None else "median"
        value = self.measured.stat(which)
        if self.reference is not None:
            base = self.reference.median
        elif self.absolute is not None:
            base = self.absolute
        else:
            return float("nan")
        if base == 0 or base != base or value != value:
            return float("nan")
        return value / base

    @property
    def problems(self) -> list[str]:
        """Problems of either series (a comparison with lost messages on either side is not met)."""
        out = list(dict.fromkeys(self.measured.problems))
        if self.reference is not None:
            out += [f"{self.reference.label}: {p}" for p in dict.fromkeys(self.reference.problems)]
        return out

    @property
    def status(self) -> Literal["met", "MISSED", "info", "n/a"]:
        """``met``/``MISSED`` for rows with a target, ``info`` for context rows, ``n/a`` if not measured."""
        if not self.measured.samples or (self.reference is not None and not self.reference.samples):
            return "n/a"
        if self.target is None:
            return "info"
        if self.problems or self.measured.counted_drops:
            return "MISSED"
        return "met" if self.target.met_by(self.ratio) else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "figure": self.figure,
            "measured": self.measured.as_dict(),
            "reference": self.reference.as_dict() if self.reference is not None else None,
            "absolute": self.absolute,
            "ratio": _finite(self.ratio),
            "target": (
                {"op": self.target.op, "value": self.target.value, "on": self.target.on}
                if self.target is not None
                else None
            ),
            "status": self.status,
            "note": self.note,
        }


def _finite(value: float) -> float | None:
    return None if value != value or value in (float("inf"), float("-inf")) else value


# ---------------------------------------------------------------------------------------------
# Formatting


def format_value(value: float, unit: str) -> str:
    """A number with a sensible precision for its unit."""
    if value != value:
        return "-"
    if unit in ("msg/s", "blocks"):
        return f"{value:,.0f}".replace(",", " ")
    if unit in ("us", "ms", "s", "MB", "KB"):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_series(series: Series) -> str:
    """``median [min-max] unit`` (a single run shows just the value)."""
    if not series.samples:
        return "not measured"
    med = format_value(series.median, series.unit)
    if len(series.samples) == 1:
        return f"{med} {series.unit}"
    low = format_value(series.min, series.unit)
    high = format_value(series.max, series.unit)
    return f"{med} [{low}..{high}] {series.unit}"


def _target_text(row: Row) -> str:
    if row.target is None:
        return "-"
    if row.reference is None and row.absolute is not None:
        return Target(row.target.op, row.absolute * row.target.value, row.target.on).describe(
            row.measured.unit
        )
    return row.target.describe()


def render_table(rows: Sequence[Row]) -> str:
    """A markdown table: figure, measured, reference, ratio, target, status, notes."""
    header = ["Figure", "Measured: median [min..max]", "Reference", "Ratio", "Target", "Met", "Notes"]
    lines = [header]
    for row in rows:
        if row.reference is not None:
            ref = f"{row.reference.label}: {format_series(row.reference)}"
        elif row.absolute is not None:
            ref = f"bound {format_value(row.absolute, row.measured.unit)} {row.measured.unit}"
        else:
            ref = "-"
        measured = f"{row.measured.label}: {format_series(row.measured)}"
        shown = [*row.measured.problems, *row.measured.counted_drops]
        if shown:
            measured += " (" + "; ".join(dict.fromkeys(shown)) + ")"
        if row.reference is not None and row.reference.problems:
            ref += " (" + "; ".join(dict.fromkeys(row.reference.problems)) + ")"
        ratio = "-" if row.ratio != row.ratio else f"{row.ratio:.2f}x"
        lines.append([row.figure, measured, ref, ratio, _target_text(row), row.status, row.note])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mosquitto_version(executable: str | None) -> str:
    if executable is None:
        return "not found"
    try:
        result = subprocess.run([executable, "-h"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """The checked-out commit, with ``+changes`` when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+changes" if status else head


def machine_info(mosquitto_executable: str | None) -> dict[str, Any]:
    """Date, commit, CPU count and model, OS, Python, Mosquitto and client library versions."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "mosquitto": _mosquitto_version(mosquitto_executable),
        "mosquitto_clients": shutil.which("mosquitto_pub") or "not found",
        "paho-mqtt": _version("paho-mqtt"),
        "aiomqtt": _version("aiomqtt"),
    }


def render_machine(info: dict[str, Any]) -> str:
    """One line describing where the numbers came from."""
    return (
        f"{info['date']} at {info['commit']} - {info['nproc']} CPU(s), {info['cpu']}, {info['os']}, "
        f"Python {info['python']}, "
        f"Mosquitto {info['mosquitto']}, paho-mqtt {info['paho-mqtt']}, aiomqtt {info['aiomqtt']}"
    )
