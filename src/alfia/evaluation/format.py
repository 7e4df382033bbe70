"""How evaluation results read, in one place: metric labels, value-with-CI texts, the small-sample warnings
shown beside a metric, and the Markdown/HTML builders of ``alfia compare``'s report (and the CLI's tables).

A value whose 95% CI has zero width (e.g. a sensitivity of 1.000 [1.000, 1.000] in a subgroup with three
deaths) is not a result: :func:`ci_text` writes :data:`DEGENERATE_TEXT` instead, and the data files keep it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

# Fewer events (deaths) than this in a split or subgroup: its metrics are flagged (every CI is wide, AUPRC and
# the threshold metrics unstable).
MIN_EVENTS = 10
# A calibration-slope 95% CI wider than this is flagged: the slope is not estimated well enough to read.
MAX_SLOPE_CI_WIDTH = 1.0
WARNING_MARK = "⚠"
DEGENERATE_TEXT = "— (zero-width CI)"

# Short labels (tables with a column per metric: compare, the card).
METRIC_LABELS = {
    "auprc": "AUPRC", "auroc": "AUROC", "best_f1": "Best F1", "best_f2": "Best F2", "f1": "F1 @ val thr.",
    "f2": "F2 @ val thr.", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV",
    "brier": "Brier", "calibration_slope": "Cal. slope", "calibration_intercept": "Cal. intercept", "ece": "ECE",
}
# Long labels (one metric a row: ``alfia evaluate``).
METRIC_LONG_LABELS = {
    "auprc": "AUPRC", "auroc": "AUROC", "best_f1": "Best F1 (test-optimal)", "best_f2": "Best F2 (test-optimal)",
    "f1": "F1 @ max-F1 thr.", "f2": "F2 @ max-F2 thr.", "sensitivity": "Sensitivity @ max-F1 thr.",
    "specificity": "Specificity @ max-F1 thr.", "ppv": "PPV @ max-F1 thr.", "npv": "NPV @ max-F1 thr.",
    "brier": "Brier score", "calibration_slope": "Calibration slope", "calibration_intercept": "Calibration intercept",
    "ece": "ECE (10 equal-width bins)",
}
# Test-optimal metrics: the threshold is chosen on the very rows scored, so they are no operating point and stay
# out of the headline tables (shown apart, for comparison with papers that report them).
TEST_OPTIMAL_METRICS = ("best_f1", "best_f2")


# -- warnings shown beside a metric -----------------------------------------------------------------
def few_events_warning(n_pos: int, where: str) -> str | None:
    """The named warning of a split or subgroup with fewer than MIN_EVENTS deaths, else None."""
    if n_pos >= MIN_EVENTS:
        return None
    return (f"few events: {n_pos} death(s) in {where} (< {MIN_EVENTS}); its CIs are wide and AUPRC, the threshold "
            f"metrics and calibration are unstable")


def slope_ci_warning(m: dict) -> str | None:
    """The named warning of a calibration slope whose 95% CI is wider than MAX_SLOPE_CI_WIDTH, else None."""
    if m.get("value") is None or m.get("ci_low") is None:
        return None
    width = m["ci_high"] - m["ci_low"]
    if width <= MAX_SLOPE_CI_WIDTH:
        return None
    return (f"calibration slope uncertain: its 95% CI is {width:.2f} wide (> {MAX_SLOPE_CI_WIDTH:g}), so the slope "
            f"is not estimated well enough to read")


def is_degenerate(m: dict | None) -> bool:
    """A value whose CI has zero width: the resamples all agree, which says the sample is too small, not that
    the value is exact."""
    return bool(m) and m.get("value") is not None and m.get("ci_low") is not None and m["ci_low"] == m["ci_high"]


# -- texts --------------------------------------------------------------------------------------
def ci_text(m: dict | None, digits: int = 3, *, style: str = "brackets") -> str:
    """A value with its 95% CI: "0.412 [0.371, 0.455]" (``style="brackets"``), "0.412 (95% CI 0.371–0.455)"
    (``"card"``) or "0.412 (0.371–0.455)" (``"dash"``); "—" without a value, the value alone without a CI,
    :data:`DEGENERATE_TEXT` for a zero-width CI; a ⚠ when the entry carries a ``caution``."""
    if not m or m.get("value") is None:
        return "—"
    if is_degenerate(m):
        return DEGENERATE_TEXT
    value = f"{m['value']:.{digits}f}"
    mark = f" {WARNING_MARK}" if m.get("caution") else ""
    if m.get("ci_low") is None:
        return value + mark
    low, high = f"{m['ci_low']:.{digits}f}", f"{m['ci_high']:.{digits}f}"
    if style == "card":
        return f"{value} (95% CI {low}–{high}){mark}"
    if style == "dash":
        return f"{value} ({low}–{high}){mark}"
    return f"{value} [{low}, {high}]{mark}"


def ci_entry(row, key: str) -> dict:
    """The ``{"value", "ci_low", "ci_high"}`` entry of ``key`` in a flat table row (a dict or a pandas row with
    columns ``key``, ``key_ci_low``, ``key_ci_high``, as in the zoo's summary.csv); a missing or NaN cell is None."""
    def cell(name):
        v = row.get(name) if hasattr(row, "get") else None
        return None if v is None or v != v else float(v)
    return {"value": cell(key), "ci_low": cell(f"{key}_ci_low"), "ci_high": cell(f"{key}_ci_high")}


def interval_text(m: dict | None, digits: int = 3) -> str:
    """The 95% CI alone, "0.371–0.455" (a table's own CI column); "—" without one."""
    if not m or m.get("ci_low") is None:
        return "—"
    return f"{m['ci_low']:.{digits}f}–{m['ci_high']:.{digits}f}"


def diff_ci_text(d: dict, digits: int = 3) -> str:
    """The 95% CI of a paired difference alone: "[-0.010, +0.030]"; "—" without one."""
    return "—" if d.get("ci_low") is None else f"[{d['ci_low']:+.{digits}f}, {d['ci_high']:+.{digits}f}]"


def diff_text(d: dict, digits: int = 3) -> str:
    """A paired difference with its CI: "+0.012 [-0.010, +0.030]"."""
    ci = "" if d.get("ci_low") is None else " " + diff_ci_text(d, digits)
    return f"{d['difference']:+.{digits}f}{ci}"


def p_text(p: float) -> str:
    return "—" if p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")


def rank_text(rank: int, tied: bool) -> str:
    """A rank shared by models no paired test separates reads "2=" in prose; tables show the number."""
    return f"{rank}=" if tied else str(rank)


# -- Markdown and HTML ----------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell) -> str:
        return str(cell).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


REPORT_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1150px;
       color: #1d2733; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #d5dbe3; padding-bottom: .2rem; }
.meta { color: #5b6877; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; width: 100%; }
th, td { border: 1px solid #d5dbe3; padding: .3rem .5rem; text-align: right; white-space: nowrap; }
th { background: #eef2f7; } td:nth-child(2), th:nth-child(2) { text-align: left; }
tr.alfia td { background: #fff4e5; font-weight: 600; }
.figs { display: flex; flex-wrap: wrap; gap: 1rem; }
.figs figure { margin: 0; flex: 1 1 480px; } .figs img { max-width: 100%; height: auto; border: 1px solid #e3e8ee; }
.scroll { overflow-x: auto; } * { box-sizing: border-box; }
figcaption { font-size: .8rem; color: #5b6877; }
.note { background: #f6f8fa; border-left: 3px solid #8aa1b8; padding: .5rem .8rem; font-size: .85rem; }
.warn { background: #fff8e1; border-left: 3px solid #e0a100; padding: .5rem .8rem; font-size: .85rem; }
code { background: #f0f3f6; padding: 0 .2rem; border-radius: 3px; }
"""


# The model card's page (``alfia card``): narrower, for prose; left-aligned tables.
CARD_CSS = """body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:980px;margin:2rem auto;
padding:0 1rem;color:#1d2733;line-height:1.5}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d5dbe3;padding:.25rem .5rem;text-align:left}th{background:#eef2f7}
h2{border-bottom:1px solid #d5dbe3;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1rem;margin-bottom:.3rem}
code{background:#f0f3f6;padding:0 .2rem;border-radius:3px}em{color:#8a5300}img{max-width:48%;margin:.3rem}"""


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], highlight: Sequence[bool] | None = None,
               first_left: bool = False) -> str:
    left = ' style="text-align:left"'
    head = "".join(f"<th{left if (first_left and j == 0) else ''}>{html.escape(h)}</th>" for j, h in enumerate(header))
    body = []
    for i, row in enumerate(rows):
        cls = ' class="alfia"' if highlight and highlight[i] else ""
        cells = "".join(f"<td{left if (first_left and j == 0) else ''}>{html.escape(str(c))}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def html_image(png: bytes, alt: str, caption: str) -> str:
    """A figure inlined as a data URI: the page needs no file beside it."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def html_page(title: str, body: Sequence[str], css: str = REPORT_CSS) -> str:
    """A self-contained HTML page: no link, script or remote resource."""
    return "\n".join([f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
                      f"<title>{html.escape(title)}</title><style>{css}</style></head><body>", *body, "</body></html>"])


def useful_thresholds_text(dca: dict) -> str:
    """Where a decision curve beats treat-all and treat-none: "0.05–0.32, 0.40" or "nowhere"."""
    ranges = dca["useful_thresholds"]
    if not ranges:
        return "nowhere"
    return ", ".join(f"{a:.2f}" if a == b else f"{a:.2f}–{b:.2f}" for a, b in ranges)
