"""`eventually`: wait for an asynchronous condition without sleeping a fixed time."""

from __future__ import annotations

__all__ = ["eventually"]

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Condition = Callable[[], "bool | Awaitable[bool]"]

# Poll schedule: a few bare yields first (in-memory deliveries complete within a handful of loop
# iterations), then sleeps growing to a cap (a real broker needs milliseconds).
_YIELDS = 20
_FIRST_SLEEP = 0.0005
_MAX_SLEEP = 0.02


async def eventually(
    condition: Condition,
    timeout: float = 5.0,  # noqa: ASYNC109 (the documented signature; it polls, it does not wrap)
    *,
    message: str = "",
) -> None:
    """Return as soon as `condition()` is true; raise `AssertionError` after `timeout` seconds.

    `condition` is a callable returning a bool, or an awaitable of a bool (an ``async def``). It may
    also raise `AssertionError` to mean "not yet": the last such message is included in the
    timeout error, so ``eventually(lambda: check())`` can explain what is still missing.
    `message` is prepended to the timeout error. Polls cheaply: bare event-loop yields first, then
    short sleeps growing to 20 ms.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    attempts = 0
    delay = _FIRST_SLEEP
    last_problem = ""
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            last_problem = f"the condition returned {result!r}"
        except AssertionError as exc:
            last_problem = f"last assertion: {exc}" if str(exc) else "last assertion failed"
        attempts += 1
        if loop.time() >= deadline:
            name = getattr(condition, "__qualname__", repr(condition))
            prefix = f"{message}: " if message else ""
            raise AssertionError(
                f"{prefix}condition {name} still not true after {timeout:g} s "
                f"({attempts} attempts; {last_problem})"
            )
        if attempts <= _YIELDS:
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, _MAX_SLEEP)
