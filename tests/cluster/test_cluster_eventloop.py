"""The event loop a server process runs on is the one $QUIVER_EVENT_LOOP names: the standard
library's by default, never another one silently (cluster/eventloop.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from cluster import eventloop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_eventloop_default_is_the_standard_library_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.chosen() == eventloop.ASYNCIO
    assert eventloop.run(_loop_module()).startswith("asyncio")
    monkeypatch.setenv(eventloop.ENV, "  ")
    assert eventloop.chosen() == eventloop.ASYNCIO


def test_eventloop_asyncio_named_runs_on_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "AsyncIO")
    assert eventloop.run(_loop_module()).startswith("asyncio")


def test_eventloop_unknown_name_is_refused_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "trio")
    coroutine = _loop_module()
    with pytest.raises(eventloop.EventLoopError, match="trio"):
        eventloop.run(coroutine)
    assert coroutine.cr_frame is None  # closed, not left pending


def test_eventloop_uvloop_named_but_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, eventloop.UVLOOP)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an absent package looks like
    with pytest.raises(eventloop.EventLoopError, match="not installed"):
        eventloop.run(_loop_module())
