"""The run report: the verdict line's exact shape and a self-contained, escaped HTML page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from chaos.history import Operation, Status
from chaos.linearizability import Verdict
from chaos.report import FaultSpan, RunSummary, latency_table, render_html


def test_summary_line_has_the_shape_quiver_chaos_run_prints() -> None:
    summary = RunSummary(Verdict.UNKNOWN, lost=2, anomalies=3, ops=1234)
    assert summary.line() == "linearizable: unknown, lost: 2, anomalies: 3, ops: 1234"
    assert not summary.ok
    assert RunSummary(Verdict.LINEARIZABLE, 0, 0, 10).ok


def test_latency_table_reports_percentiles_of_known_latencies() -> None:
    ops = [
        Operation(0, "x", "read", None, 1, 0, ms * 1_000_000, Status.OK, i)
        for i, ms in enumerate(range(1, 101))
    ]
    ops.append(Operation(1, "x", "write", 1, None, 0, None, Status.INFO, 200))
    table = latency_table(ops)
    assert set(table) == {"read"}
    assert table["read"]["count"] == 100 and table["read"]["max"] == 100.0
    assert 49 <= table["read"]["p50"] <= 51 and table["read"]["p99"] >= 99


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.external.append(value)


def test_html_is_self_contained_shows_faults_and_escapes_history_text() -> None:
    ops = [
        Operation(0, "<script>alert(1)</script>", "write", 1, None, 0, 5_000_000, Status.OK, 0),
        Operation(1, "x", "read", None, 1, 1_000_000, 9_000_000, Status.OK, 1),
        Operation(2, "x", "write", 2, None, 2_000_000, None, Status.INFO, 2),
    ]
    page = render_html(
        "run <1>",
        ops,
        RunSummary(Verdict.LINEARIZABLE, 0, 0, len(ops)),
        faults=[FaultSpan(3_000_000, 6_000_000, "partition n1|n2,n3")],
        verdicts={"register": "yes", "set": "lost 0"},
    )
    collector = _Collector()
    collector.feed(page)
    assert "script" not in collector.tags
    assert collector.external == []
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "partition n1|n2,n3" in page
    assert "linearizable: yes, lost: 0, anomalies: 0, ops: 3" in page
    assert len(re.findall(r"<rect ", page)) == 3 + 1  # three operations, one fault window
