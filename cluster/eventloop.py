"""Which asyncio event loop a Quiver server process runs on: the one place that chooses it, for
``quiver serve`` (cluster/node.py) and the benchmark's echo service (cluster/echo.py), so that
the echo stays "the same stack doing no work".

``$QUIVER_EVENT_LOOP`` names the loop: ``asyncio`` (the standard library's) or ``uvloop``.
Child processes inherit it, so ``QUIVER_EVENT_LOOP=uvloop quiver up`` starts every node (and
``quiver bench cluster`` its echo) on uvloop. Must never: fall back silently to another loop
than the one named (a benchmark would then measure the wrong thing).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

ENV: Final = "QUIVER_EVENT_LOOP"
ASYNCIO: Final = "asyncio"
UVLOOP: Final = "uvloop"
LOOPS: Final = (ASYNCIO, UVLOOP)
DEFAULT: Final = ASYNCIO

T = TypeVar("T")


class EventLoopError(Exception):
    """``$QUIVER_EVENT_LOOP`` names no loop this process can run."""


def chosen() -> str:
    """The loop ``$QUIVER_EVENT_LOOP`` names (the default when unset or empty)."""
    name = os.environ.get(ENV, "").strip().lower() or DEFAULT
    if name not in LOOPS:
        raise EventLoopError(f"${ENV} is {name!r}; expected one of {', '.join(LOOPS)}")
    return name


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == UVLOOP:
        try:
            import uvloop
        except ImportError as error:
            raise EventLoopError(f"${ENV}={UVLOOP} but uvloop is not installed") from error
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    try:
        factory = loop_factory(chosen())
    except EventLoopError:
        main.close()  # never awaited: no "coroutine was never awaited" warning on top
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
