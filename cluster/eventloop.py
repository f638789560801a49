"""Which asyncio event loop a Quiver server process runs on: the one place that chooses it, for
``quiver serve`` (cluster/node.py) and the benchmark's echo service (cluster/echo.py), so that
the echo stays "the same stack doing no work".

uvloop by default: measured against the standard library's loop with two clusters up at once
and the same statements timed on both call by call, it was faster in every comparison (p50,
mean of 3 rounds): Bolt floor (``RETURN $id``) 0.88 -> 0.84 ms, point lookup 1.00 -> 0.96 ms,
friend-of-friend 1.68 -> 1.64 ms; gRPC single-client write 6.5 -> 6.2 ms, linearizable read
2.75 -> 2.59 ms, causal read 1.33 -> 1.27 ms. Small (3-7 %), but steady; ``quiver bench``
run by run on the shared machine could not tell the two apart from noise.

``$QUIVER_EVENT_LOOP`` names the loop: ``uvloop`` or ``asyncio`` (the standard library's, the
way back should uvloop misbehave). Child processes inherit it, so ``QUIVER_EVENT_LOOP=asyncio
quiver up`` starts every node (and ``quiver bench cluster`` its echo) on asyncio's loop. Must
never: fall back silently to another loop than the one named (a benchmark would then measure
the wrong thing).
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
DEFAULT: Final = UVLOOP

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
