"""One self-contained HTML page: a title, a summary, figures and tables, with plotly.js embedded once (offline)."""

from __future__ import annotations

import html
import math
import os
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

FIGURE_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}

CSS = """
body { margin: 0; background: #fafafa; color: #222;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1400px; margin: 0 auto; padding: 1rem 2rem 3rem; }
h1 { font-size: 1.6rem; margin: 0.8rem 0 0.4rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.3rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
p.summary { font-size: 1rem; line-height: 1.5; max-width: 70rem; }
p.caption, p.note { color: #555; font-size: 0.9rem; margin: 0.2rem 0 0.6rem; max-width: 70rem; }
p.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: 0.5rem 0.8rem; }
section.figure { background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; padding: 0.4rem; }
div.table-wrap { overflow-x: auto; max-height: 32rem; overflow-y: auto; border: 1px solid #e3e3e3; }
table.data { border-collapse: collapse; font-size: 0.85rem; background: #fff; }
table.data th, table.data td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #eee; text-align: right;
  white-space: nowrap; }
table.data th { position: sticky; top: 0; background: #f0f0f0; }
table.data td:first-child, table.data th:first-child { text-align: left; }
footer { margin-top: 3rem; color: #888; font-size: 0.8rem; }
"""


def esc(value: Any) -> str:
    """``value`` as text safe in HTML and in plotly's pseudo-HTML labels."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 1) -> str:
    """A cell or number as short text: thousands separators, ``digits`` decimals, a dash for missing values."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        if float(v).is_integer() and abs(v) < 1e15 and isinstance(value, int):
            return f"{int(v):,}"
        if v != 0 and abs(v) < 10 ** (-digits):
            return f"{v:.3g}"
        return f"{v:,.{digits}f}"
    try:
        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    return str(value)


def fmt_ms(value: float | None) -> str:
    """A time in ms as "12,345.6 ms (12.35 s)"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.1f} ms ({value / 1000:,.2f} s)"


def table_html(frame: pd.DataFrame, digits: int = 3) -> str:
    """An HTML table of ``frame``: every cell formatted by :func:`fmt` and escaped."""
    shown = pd.DataFrame(
        {
            str(c): [fmt(v.item() if hasattr(v, "item") else v, digits) for v in frame[c]]
            for c in frame.columns
        },
        columns=[str(c) for c in frame.columns],
    )
    body = shown.to_html(index=False, escape=True, classes="data", border=0, na_rep="—")
    return f'<div class="table-wrap">{body}</div>'


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The bundled plotly.js (read once per process)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@dataclass
class Page:
    """A report page being assembled; :meth:`render` returns the whole document."""

    title: str
    summary: str = ""
    parts: list[str] = field(default_factory=list)
    figures: int = 0

    def heading(self, text: str) -> None:
        """A section heading."""
        self.parts.append(f"<h2>{esc(text)}</h2>")

    def caption(self, text: str) -> None:
        """A short explanation under a heading."""
        self.parts.append(f'<p class="caption">{esc(text)}</p>')

    def note(self, text: str) -> None:
        """A highlighted note (e.g. why a figure is missing)."""
        self.parts.append(f'<p class="note">{esc(text)}</p>')

    def figure(self, fig: go.Figure, key: str) -> None:
        """A plotly figure, its div id ``fig-<key>`` (unique in the page)."""
        self.figures += 1
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config=FIGURE_CONFIG,
            div_id=f"fig-{key}",
            default_width="100%",
        )
        self.parts.append(f'<section class="figure">{div}</section>')

    def table(self, frame: pd.DataFrame, digits: int = 3) -> None:
        """An HTML table of a DataFrame."""
        self.parts.append(table_html(frame, digits))

    def render(self) -> str:
        """The complete HTML document, plotly.js embedded once in the head."""
        from pslsched import __version__

        body = "\n".join(self.parts)
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(self.title)}</title>\n<style>{CSS}</style>\n"
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
            f'<script type="text/javascript">{plotly_js()}</script>\n'
            "</head>\n<body>\n<main>\n"
            f"<h1>{esc(self.title)}</h1>\n"
            f'<p class="summary">{esc(self.summary)}</p>\n'
            f"{body}\n"
            f"<footer>pslsched {esc(__version__)}: a self-contained report (no network needed); drag to zoom, "
            "double-click to reset, click a legend entry to hide a series.</footer>\n"
            "</main>\n</body>\n</html>\n"
        )


def write_report(path: str | Path, html_text: str) -> Path:
    """Write a report page atomically (a temporary file in the same folder, then a rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:  # the usual permissions (umask), unlike mkstemp's 0600
            fh.write(html_text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
