"""Named zones read their rules from the pinned `tzdata` package, not from the host, so every
replica gives a zone the same offsets; unknown or path-like names are refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import tzdata

from cypher import CypherError, Engine
from cypher.temporal import zone_info
from store.memory import MemoryGraph


def _run(query: str) -> Any:
    return Engine().run(MemoryGraph(), query, {}).rows


def test_zone_rules_come_from_the_tzdata_package_not_the_host() -> None:
    stockholm = zone_info("Europe/Stockholm")
    # The IANA main data (and Neo4j); Debian's backzone build says +01:12:12 here.
    assert stockholm.utcoffset(dt.datetime(1818, 7, 21)) == dt.timedelta(minutes=53, seconds=28)
    assert stockholm.utcoffset(dt.datetime(2024, 7, 1)) == dt.timedelta(hours=2)
    assert tzdata.IANA_VERSION


def test_a_named_zone_in_cypher_uses_the_pinned_rules() -> None:
    rows = _run("RETURN toString(datetime('1818-07-21T21:40:32.142[Europe/Stockholm]')) AS s")
    assert rows == [["1818-07-21T21:40:32.142+00:53:28[Europe/Stockholm]"]]


@pytest.mark.parametrize("name", ["Nowhere/Zone", "../etc/passwd", "/etc/localtime", "Europe"])
def test_unknown_and_path_like_zone_names_are_refused(name: str) -> None:
    with pytest.raises(CypherError):
        _run(f"RETURN datetime({{year: 2020, timezone: '{name}'}}) AS d")
