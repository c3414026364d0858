"""A small engine: runs tasks concurrently, obeys the constraints in force, publishes telemetry."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    Connector,
    ConstraintBook,
    RunningTask,
    RunTelemetry,
    TaskState,
)


async def run_engine(
    connector: Connector,
    tasks: list[str],
    work: Callable[[str], Awaitable[None]],
    *,
    project: str,
    run_id: str,
    source: str,
    workers: int = 4,
) -> dict[str, TaskState]:
    """Run every task (`work(name)` does the work), at most `workers` at once, obeying the
    constraints in force; return each task id's final state. Connects and disconnects `connector`.
    """
    book = ConstraintBook()
    telemetry = RunTelemetry(connector, project_id=project, run_id=run_id, source=source)
    changed = asyncio.Event()  # a constraint arrived or a task ended: look again
    states: dict[str, TaskState] = {}

    async def on_constraint(topic: str, payload: dict[str, Any]) -> None:
        book.apply(topic, payload)  # a bad message raises: the connector logs and counts it
        changed.set()

    async def run_task(task_id: str, name: str, running: RunningTask) -> None:
        await telemetry.task_state(task_id, name, TaskState.RUNNING)
        try:
            await work(name)
        except Exception as exc:  # the task failed; the engine goes on
            states[task_id], error = TaskState.FAILED, f"{type(exc).__name__}: {exc}"
        else:
            states[task_id], error = TaskState.COMPLETED, ""
        finally:
            book.finished(running)
            changed.set()
        duration_ms = (time.time() - running.started_at) * 1000.0
        await telemetry.task_state(task_id, name, states[task_id], duration_ms=duration_ms, error=error)

    await connector.connect()
    try:
        # Returns only after every retained constraint was handed to the book: a pause already in
        # force holds the very first task.
        await connector.subscribe(CONSTRAINTS_FILTER, on_constraint)
        await telemetry.engine_started()
        pending = [(f"{run_id}-{number}", name) for number, name in enumerate(tasks)]
        for task_id, name in pending:
            await telemetry.task_state(task_id, name, TaskState.PENDING)
        async with asyncio.TaskGroup() as group:
            while pending:
                changed.clear()
                wait: float | None = None  # None: nothing changes until a task ends or a message comes
                for task_id, name in list(pending):
                    if book.running() >= workers:
                        break
                    admission = book.admit(name, project)
                    if admission.allowed:
                        pending.remove((task_id, name))
                        group.create_task(run_task(task_id, name, book.started(name, project)))
                    elif admission.wait_s is not None:  # a rate limit's next slot, or an expiry
                        wait = admission.wait_s if wait is None else min(wait, admission.wait_s)
                if pending:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), wait)
        await telemetry.engine_stopped()
    finally:
        await connector.disconnect()  # sends what is queued first: ENGINE_STOPPED is not lost
    return states
