"""One self-contained HTML report of a compiled model (and, from `validate`, of its dataset run).

No network is needed to open it: the CSS is inline and every figure is an inline SVG drawn
here from the numbers (no JavaScript, no web fonts).  Figures: the memory plan over the layers
(each buffer a box from the step that writes it to the last step that reads it, at its arena
offset; the live bytes per step beside the arena size), per-layer cost (MACs, and instructions
when a bench result is given), flash and RAM against the board's limits, and from `validate` the
reliability diagrams and per-class accuracy bars.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from tinyc.resources import templates_dir

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
DEPLOYED, REFERENCE = "#4e79a7", "#f28e2b"
PEAK = "#d62728"


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}" '
                  f'font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")


def _text(x: float, y: float, s: Any, anchor: str = "start", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>'
            f'{_esc(s)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "",
          extra: str = "") -> str:
    tip_el = f"<title>{_esc(tip)}</title>" if tip else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}" {extra}>{tip_el}</rect>')


def _bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def memory_plan_svg(report: dict[str, Any]) -> Markup:
    """Arena occupancy per step: x = step (layer), y = arena offset; one box per buffer."""
    buffers = report["memory_plan"]
    arena = max(report["arena_bytes"], 1)
    steps = len(report["layers"])
    lo = min([b["first"] for b in buffers] + [0])
    hi = max([b["last"] for b in buffers] + [steps - 1])
    width, height, left, top, bottom = 900, 330, 70, 30, 40
    plot_w, plot_h = width - left - 20, height - top - bottom
    span = hi - lo + 1
    sx = plot_w / span
    body = [_rect(left, top, plot_w, plot_h, "#f6f6f6")]
    for i, b in enumerate(buffers):
        x = left + (b["first"] - lo) * sx
        w = (b["last"] - b["first"] + 1) * sx
        y = top + plot_h - (b["offset"] + b["bytes"]) / arena * plot_h
        h = b["bytes"] / arena * plot_h
        tip = (f"{', '.join(b['tensors'])}: {b['bytes']:,} B at offset {b['offset']:,}, "
               f"steps {b['first']}..{b['last']}"
               + (f", written in place over {b['overwrites']}" if b.get("overwrites") else ""))
        body.append(_rect(x, y, w, h, PALETTE[i % len(PALETTE)], tip,
                          'stroke="#fff" stroke-width="0.5" opacity="0.85"'))
    # Live bytes per step: the layers' own figure (an in-place pair counted once); before the
    # first and after the last layer only inputs / outputs are live, which never overlap.
    points = []
    for s in range(lo, hi + 1):
        live = (report["layers"][s]["live_bytes"] if 0 <= s < steps else
                sum(b["bytes"] for b in buffers if b["first"] <= s <= b["last"]))
        y = top + plot_h - live / arena * plot_h
        points += [f"{left + (s - lo) * sx:.1f},{y:.1f}", f"{left + (s - lo + 1) * sx:.1f},{y:.1f}"]
    body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#222" '
                'stroke-width="1.5" stroke-dasharray="4 2"><title>live bytes per step</title>'
                '</polyline>')
    peak = report["peak"]
    if peak["layer"] >= 0:
        x = left + (peak["layer"] - lo + 0.5) * sx
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
                    f'stroke="{PEAK}" stroke-width="2" stroke-dasharray="6 3">'
                    f'<title>peak: {peak["live_bytes"]:,} B live at layer {peak["layer"]}'
                    '</title></line>')
        body.append(_text(min(x + 4, left + plot_w - 4), top - 6,
                          f"peak {peak['live_bytes']:,} B at layer {peak['layer']} "
                          f"{peak['name']}", "end" if x > left + plot_w / 2 else "start",
                          f'fill="{PEAK}" font-weight="bold" class="peak"'))
    for frac in (0, 0.5, 1):
        y = top + plot_h - frac * plot_h
        body.append(_text(left - 5, y + 4, _bytes(int(arena * frac)), "end"))
    tick = max(1, span // 12)
    for s in range(lo, hi + 1, tick):
        body.append(_text(left + (s - lo + 0.5) * sx, top + plot_h + 14, s, "middle"))
    body.append(_text(left + plot_w / 2, height - 6, "step (-1: input written before layer 0; "
                      "dashed: live bytes)", "middle"))
    return _svg(width, height, body, "memory plan")


def layer_cost_svg(report: dict[str, Any], counts: list[int] | None = None) -> Markup:
    """Horizontal bars per layer: MACs, and when measured (`tinyc bench`, `validate
    --on-target`) instructions with instructions per MAC beside them."""
    layers = report["layers"]
    row, left, width = 16, 230, 900
    height = 30 + row * len(layers)
    gap = 90  # room for the MACs figure after its bar
    bar_w = (width - left - gap - 150) / 2 if counts else width - left - gap
    macs_max = max([la["macs"] for la in layers] + [1])
    cnt_max = max((counts or []) + [1])
    body = [_text(left, 14, "MACs", extra='font-weight="bold"')]
    if counts:
        body.append(_text(left + bar_w + gap, 14, "instructions", extra='font-weight="bold"'))
    for i, la in enumerate(layers):
        y = 22 + i * row
        body.append(_text(left - 6, y + 10, f"{la['index']} {la['name'][:28]} ({la['op']})",
                          "end"))
        w = la["macs"] / macs_max * bar_w
        body.append(_rect(left, y, w, row - 4, DEPLOYED, f"{la['macs']:,} MACs"))
        body.append(_text(left + w + 3, y + 10, f"{la['macs']:,}"))
        if counts and i < len(counts):
            x0 = left + bar_w + gap
            w = counts[i] / cnt_max * bar_w
            per_mac = f" ({counts[i] / la['macs']:.2f}/MAC)" if la["macs"] else ""
            body.append(_rect(x0, y, w, row - 4, REFERENCE,
                              f"{counts[i]:,} instructions{per_mac}", 'class="instructions"'))
            body.append(_text(x0 + w + 3, y + 10, f"{counts[i]:,}{per_mac}"))
    return _svg(width, height, body, "per-layer cost")


def budget_svg(report: dict[str, Any], board) -> Markup:
    """Flash (weights) and RAM (arena + stack) against the board's sizes."""
    items = [("flash: weights", report["weight_bytes"], board.flash.size),
             ("RAM: arena + stack", report["arena_bytes"] + board.stack_size, board.ram.size)]
    width, left, bar_w = 900, 150, 600
    body = []
    for i, (name, used, size) in enumerate(items):
        y = 10 + i * 34
        frac = used / size if size else 0
        color = "#59a14f" if frac <= 1 else "#e15759"
        body.append(_text(left - 6, y + 15, name, "end"))
        body.append(_rect(left, y, bar_w, 22, "#e8e8e8", f"{size:,} B on {board.id}"))
        body.append(_rect(left, y, min(frac, 1) * bar_w, 22, color, f"{used:,} B"))
        body.append(_text(left + bar_w + 6, y + 15,
                          f"{used:,} of {size:,} B ({frac:.1%})"))
    return _svg(width, 80, body, "flash and RAM")


def reliability_svg(deployed: dict[str, Any], reference: dict[str, Any]) -> Markup:
    """Reliability diagram: accuracy per confidence bin, deployed and reference side by side."""
    size, left, top = 300, 40, 10
    body = [_rect(left, top, size, size, "#f6f6f6"),
            f'<line x1="{left}" y1="{top + size}" x2="{left + size}" y2="{top}" '
            'stroke="#999" stroke-dasharray="3 3"/>']
    bins = deployed["reliability"]
    bw = size / len(bins)
    for k, (metrics, color) in enumerate(((deployed, DEPLOYED), (reference, REFERENCE))):
        for b, rel in enumerate(metrics["reliability"]):
            if not rel["count"]:
                continue
            h = rel["accuracy"] * size
            x = left + b * bw + k * bw / 2
            body.append(_rect(x, top + size - h, bw / 2 - 1, h, color,
                              f"({rel['lo']:.2f}, {rel['hi']:.2f}]: {rel['count']} samples, "
                              f"accuracy {rel['accuracy']:.3f}, confidence "
                              f"{rel['confidence']:.3f}"))
    for frac in (0, 0.5, 1):
        body.append(_text(left - 4, top + size - frac * size + 4, f"{frac:g}", "end"))
        body.append(_text(left + frac * size, top + size + 14, f"{frac:g}", "middle"))
    body.append(_text(left + size / 2, top + size + 28, "confidence (max probability)",
                      "middle"))
    body += [_rect(left + 5, top + 5, 10, 10, DEPLOYED),
             _text(left + 19, top + 14, f"deployed (ECE {deployed['ece']:.4f})"),
             _rect(left + 5, top + 20, 10, 10, REFERENCE),
             _text(left + 19, top + 29, f"reference (ECE {reference['ece']:.4f})")]
    return _svg(size + left + 10, size + top + 36, body, "reliability diagram")


def per_class_svg(deployed: dict[str, Any], reference: dict[str, Any]) -> Markup:
    classes = len(deployed["per_class"])
    height, left, top = 180, 40, 10
    group = max(14, min(40, 820 // max(classes, 1)))
    width = left + group * classes + 20
    body = [_rect(left, top, group * classes, height, "#f6f6f6")]
    for c in range(classes):
        for k, (metrics, color) in enumerate(((deployed, DEPLOYED), (reference, REFERENCE))):
            acc = metrics["per_class"][c]
            if acc is None:
                continue
            h = acc * height
            body.append(_rect(left + c * group + 2 + k * (group - 4) / 2, top + height - h,
                              (group - 4) / 2, h, color, f"class {c}: {acc:.1%}"))
        body.append(_text(left + (c + 0.5) * group, top + height + 13, c, "middle"))
    for frac in (0, 0.5, 1):
        body.append(_text(left - 4, top + height - frac * height + 4, f"{frac:g}", "end"))
    return _svg(width, height + top + 20, body, "per-class accuracy")


def render_html(title: str, builds: list[tuple[str, dict[str, Any], Any]],
                deployments: list | None = None,
                layer_counts: dict[str, list[int]] | None = None) -> str:
    """builds: (label, report.json dict, Board) per deployment; deployments: validate results;
    layer_counts: per build label, the instructions of each layer measured on its board."""
    env = Environment(loader=FileSystemLoader(str(templates_dir())),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    sections = []
    for label, report, board in builds:
        counts = (layer_counts or {}).get(label)
        sections.append({
            "label": label, "report": report, "board": board,
            "memory": memory_plan_svg(report),
            "cost": layer_cost_svg(report, counts),
            "measured": board.id if counts else None,
            "budget": budget_svg(report, board),
        })
    validation = []
    for d in deployments or []:
        validation.append({"d": d, "reliability": reliability_svg(d.deployed, d.reference),
                           "per_class": per_class_svg(d.deployed, d.reference)})
    return env.get_template("report.html.j2").render(title=title, sections=sections,
                                                     validation=validation)


def write_html(path: Path, title: str, builds: list[tuple[str, dict[str, Any], Any]],
               deployments: list | None = None,
               layer_counts: dict[str, list[int]] | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(title, builds, deployments, layer_counts), encoding="utf-8")
