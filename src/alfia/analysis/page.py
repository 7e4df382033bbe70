"""The HTML page and figure helpers of ``alfia analyze`` and ``alfia robustness``, in the comparison report's style
(``alfia.evaluation.compare``: its CSS, tables and inline figures), so all of ALFIA's pages read alike."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from alfia.atomic import write_atomic, write_text_atomic
from alfia.evaluation.format import html_image as _img, html_page, html_table as _html_table  # the report's style, one home
from alfia.evaluation.plots import _new_figure, figure_png

__all__ = ["fmt", "html_table", "new_figure", "write_figure", "write_page"]

html_table = _html_table
new_figure = _new_figure


def fmt(x, digits: int = 3) -> str:
    """A number for a table: '—' for missing or non-finite values."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return f"{x:,}"
    return f"{x:.{digits}f}"


def write_figure(fig, folder: Path, name: str, caption: str, figures: dict, parts: list[str] | None = None) -> None:
    """Save ``fig`` as ``folder/name.png``, record it in ``figures`` and (``parts``) add it inline to the page."""
    png = figure_png(fig)
    figures[name] = write_atomic(folder / f"{name}.png", lambda p: p.write_bytes(png))
    if parts is not None:
        parts.append(_img(png, name, caption))


def write_page(path: Path, title: str, meta: str, body: Sequence[str]) -> Path:
    """One self-contained page (inline CSS, figures as base64 PNG)."""
    return write_text_atomic(path, html_page(title, [f"<h1>{html.escape(title)}</h1>",
                                                     f"<p class=\"meta\">{html.escape(meta)}</p>", *body]))
