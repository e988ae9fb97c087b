"""Shared pytest set-up: examples/ importable (the model zoo), and the node-test tally printed
at the end of every run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

NODE_TEST = "tests/test_onnx_node.py::test_node["


def pytest_terminal_summary(terminalreporter) -> None:
    counts = {}
    for outcome in ("passed", "failed", "skipped"):
        reports = terminalreporter.stats.get(outcome, [])
        counts[outcome] = sum(1 for r in reports
                              if r.nodeid.startswith(NODE_TEST) and r.when == "call")
    total = sum(counts.values())
    if total:
        terminalreporter.write_line(
            f"ONNX backend node tests through host-compiled C: {total} run, "
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
            "(refused cases in REFUSED count as passed when refused with their stated reason)")
