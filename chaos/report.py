"""A chaos run's report: the one-line verdict and a self-contained HTML page.

Owns the presentation of a run: the last line ``quiver chaos run`` prints
(``linearizable: yes|no|unknown, lost: N, anomalies: N, ops: N``) and an HTML page — inline
SVG, no scripts, no external resources — with a timeline of every operation by process,
the fault windows across it, and latency percentiles per operation, readable at a glance.

Must never: judge anything (the checkers do), or embed text from a history unescaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaos.history import Operation, Status
from chaos.linearizability import Verdict

# A page stays small enough to open: beyond this many operations the timeline is truncated.
MAX_TIMELINE_OPS = 20_000
ROW_HEIGHT_PX = 14
TIMELINE_WIDTH_PX = 1200
LABEL_WIDTH_PX = 60

_COLOURS = {Status.OK: "#3a9d5d", Status.FAIL: "#c0392b", Status.INFO: "#e67e22"}


@dataclass(slots=True, frozen=True)
class FaultSpan:
    start_ns: int
    end_ns: int
    label: str


@dataclass(slots=True, frozen=True)
class RunSummary:
    linearizable: Verdict
    lost: int
    anomalies: int
    ops: int

    def line(self) -> str:
        return (
            f"linearizable: {self.linearizable.value}, lost: {self.lost}, "
            f"anomalies: {self.anomalies}, ops: {self.ops}"
        )

    @property
    def ok(self) -> bool:
        return self.linearizable is Verdict.LINEARIZABLE and self.lost == 0 and not self.anomalies


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def latency_table(ops: Sequence[Operation]) -> dict[str, dict[str, float]]:
    """Per operation kind: count and p50/p95/p99/max latency in milliseconds (known ones)."""
    by_kind: dict[str, list[float]] = {}
    for op in ops:
        if op.return_ns is not None:
            by_kind.setdefault(op.op, []).append((op.return_ns - op.call_ns) / 1e6)
    table: dict[str, dict[str, float]] = {}
    for kind, values in sorted(by_kind.items()):
        values.sort()
        table[kind] = {
            "count": float(len(values)),
            "p50": _percentile(values, 0.50),
            "p95": _percentile(values, 0.95),
            "p99": _percentile(values, 0.99),
            "max": values[-1],
        }
    return table


def render_html(
    title: str,
    ops: Sequence[Operation],
    summary: RunSummary,
    faults: Sequence[FaultSpan] = (),
    verdicts: Mapping[str, str] | None = None,
) -> str:
    """The report page as one string."""
    shown = list(ops[:MAX_TIMELINE_OPS])
    times = [op.call_ns for op in shown] + [op.return_ns for op in shown if op.return_ns]
    times += [f.start_ns for f in faults] + [f.end_ns for f in faults]
    start = min(times, default=0)
    end = max(times, default=1)
    span = max(1, end - start)

    def x(at_ns: int) -> float:
        return LABEL_WIDTH_PX + (at_ns - start) / span * TIMELINE_WIDTH_PX

    processes = sorted({op.process for op in shown})
    row = {process: index for index, process in enumerate(processes)}
    height = max(1, len(processes)) * ROW_HEIGHT_PX + 20
    svg: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_WIDTH_PX + TIMELINE_WIDTH_PX}"'
        f' height="{height}" font-size="10" font-family="monospace">'
    ]
    for fault in faults:
        x0, x1 = x(fault.start_ns), x(fault.end_ns)
        svg.append(
            f'<rect x="{x0:.1f}" y="0" width="{max(1.0, x1 - x0):.1f}" height="{height}"'
            f' fill="#8e44ad" fill-opacity="0.15"><title>{html.escape(fault.label)}</title></rect>'
            f'<text x="{x0 + 2:.1f}" y="{height - 4}" fill="#8e44ad">'
            f"{html.escape(fault.label)}</text>"
        )
    for process in processes:
        y = row[process] * ROW_HEIGHT_PX
        svg.append(f'<text x="2" y="{y + 10}">p{process}</text>')
    for op in shown:
        y = row[op.process] * ROW_HEIGHT_PX + 2
        x0 = x(op.call_ns)
        x1 = x(op.return_ns if op.return_ns is not None else end)
        label = (
            f"p{op.process} {op.op} {op.key} in={op.input!r} out={op.output!r} "
            f"{op.status.value}"
            + ("" if op.return_ns is None else f" {(op.return_ns - op.call_ns) / 1e6:.2f} ms")
        )
        # An operation of unknown outcome runs to the end of the page, faded.
        faded = ' fill-opacity="0.4"' if op.return_ns is None else ""
        svg.append(
            f'<rect x="{x0:.1f}" y="{y}" width="{max(1.0, x1 - x0):.1f}"'
            f' height="{ROW_HEIGHT_PX - 4}" fill="{_COLOURS[op.status]}"{faded}>'
            f"<title>{html.escape(label)}</title></rect>"
        )
    svg.append("</svg>")

    rows = "".join(
        f"<tr><td>{html.escape(kind)}</td><td>{int(stats['count'])}</td>"
        + "".join(f"<td>{stats[name]:.2f}</td>" for name in ("p50", "p95", "p99", "max"))
        + "</tr>"
        for kind, stats in latency_table(ops).items()
    )
    verdict_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in (verdicts or {}).items()
    )
    truncated = (
        f"<p>Timeline shows the first {MAX_TIMELINE_OPS} of {len(ops)} operations.</p>"
        if len(ops) > MAX_TIMELINE_OPS
        else ""
    )
    status = "passed" if summary.ok else "FAILED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
.passed {{ color: #3a9d5d; }} .FAILED {{ color: #c0392b; }}
.legend span {{ padding: 0 6px; color: white; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="{status}"><b>{status}</b> — <code>{html.escape(summary.line())}</code></p>
<table><tr><th>check</th><th>verdict</th></tr>{verdict_rows}</table>
<h2>Timeline</h2>
<p class="legend"><span style="background:{_COLOURS[Status.OK]}">ok</span>
<span style="background:{_COLOURS[Status.FAIL]}">fail</span>
<span style="background:{_COLOURS[Status.INFO]}">info (unknown)</span>
<span style="background:#8e44ad">fault</span></p>
{truncated}{"".join(svg)}
<h2>Latency (ms)</h2>
<table><tr><th>op</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>
{rows}</table>
</body></html>
"""
