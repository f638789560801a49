"""The event loop a server process runs on is the one $QUIVER_EVENT_LOOP names: uvloop by
default, asyncio's when asked, never another one silently (cluster/eventloop.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

from cluster import eventloop
from cluster.client import connect

NODE_START_S = 60.0
NODE_STOP_S = 30.0


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_eventloop_default_is_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.chosen() == eventloop.UVLOOP
    assert eventloop.run(_loop_module()).startswith("uvloop")
    monkeypatch.setenv(eventloop.ENV, "  ")
    assert eventloop.chosen() == eventloop.UVLOOP


def test_eventloop_asyncio_named_is_the_way_back_to_the_standard_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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


@pytest.mark.parametrize(
    ("named", "expected"), [(None, eventloop.UVLOOP), (eventloop.ASYNCIO, "asyncio")]
)
def test_eventloop_a_node_serves_on_the_loop_its_environment_names(
    tmp_path: Path, named: str | None, expected: str
) -> None:
    directory = tmp_path / "q"
    quiver = [sys.executable, "-m", "cluster.cli"]
    init = [*quiver, "init", "--dir", str(directory), "--nodes", "1", "--zones", "1"]
    subprocess.run(init, check=True, capture_output=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if k != eventloop.ENV}
    if named is not None:
        env[eventloop.ENV] = named
    log = tmp_path / "node.log"
    config = directory / "nodes" / "1" / "node.json"
    with open(log, "wb") as out:
        node = subprocess.Popen(
            [*quiver, "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:

        def serving() -> bool:
            assert node.poll() is None, log.read_text()
            return "serving clients" in log.read_text()

        wait_for("the node to serve clients", serving, NODE_START_S)
        assert f"n1 event loop: {expected}" in log.read_text()
        with connect(directory) as client:  # gRPC and TLS work on that loop
            assert client.run("RETURN 1 AS one").rows == [[1]]
    finally:
        node.send_signal(signal.SIGTERM)
        status = node.wait(NODE_STOP_S)
    assert status == 0, log.read_text()


def test_eventloop_serve_refuses_an_unknown_loop_in_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "q"
    quiver = [sys.executable, "-m", "cluster.cli"]
    init = [*quiver, "init", "--dir", str(directory), "--nodes", "1", "--zones", "1"]
    subprocess.run(init, check=True, capture_output=True, timeout=60)
    config = directory / "nodes" / "1" / "node.json"
    done = subprocess.run(
        [*quiver, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, eventloop.ENV: "trio"},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "Neo.ClientError.Request.Invalid: quiver serve: "
        "$QUIVER_EVENT_LOOP is 'trio'; expected one of asyncio, uvloop"
    ]
