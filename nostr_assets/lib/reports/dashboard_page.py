"""The dashboard as one HTML file that opens in a browser with no network at all.

Everything is inline: Vega, Vega-Lite and vega-embed once (the bundle vl-convert carries), then
each chart's specification with its data, country outlines included. A Content-Security-Policy
forbids every fetch, so a URL that slipped into a specification could not load either.

Relay names, software strings and URLs come from strangers' NIP-11 documents and events: text
is HTML-escaped, and JSON is written with ``<``, ``>`` and ``&`` escaped, so no value can close
the script element that holds it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import vl_convert

from nostr_assets.lib.reports.chart_parts import VEGA_LITE_VERSION, Panel
from nostr_assets.lib.reports.country_outlines import CREDIT
from nostr_assets.lib.reports.dashboard_data import DashboardData
from nostr_assets.lib.reports.dashboard_tables import DAYS_SHOWN

TITLE = "Nostr network dashboard"
# Vega compiles its expressions with Function(), hence 'unsafe-eval'; nothing may be fetched.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
  color: #222; background: #f6f7f9; }
header, main, footer { max-width: 1140px; margin: 0 auto; padding: 0 20px; }
h1 { font-size: 1.6rem; margin: 20px 0 4px; }
h2 { font-size: 1.1rem; margin: 0 0 2px; }
.meta, .question, .note, footer { color: #555; font-size: 0.9rem; }
.question { margin: 0 0 8px; }
.note { margin: 6px 0 0; font-size: 0.8rem; }
ul.figures { display: flex; flex-wrap: wrap; gap: 10px; list-style: none; padding: 0; }
ul.figures li { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px;
  padding: 8px 12px; flex: 1 1 0; min-width: 110px; }
ul.figures .value { display: block; font-size: 1.5rem; font-weight: 600; }
ul.figures .label { display: block; font-size: 0.85rem; }
ul.figures .detail { display: block; color: #777; font-size: 0.75rem; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
section.panel { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px;
  padding: 12px 14px; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
.warnings { color: #8a5a00; font-size: 0.9rem; }
footer { padding-top: 16px; padding-bottom: 24px; }
"""

# Draws every chart, marks each container with how it went, and the page when all are done
# (the browser test waits for data-ready; an error shows in its container, not only in the
# console).
SCRIPT = """
(function () {
  var charts = Array.prototype.slice.call(document.querySelectorAll("[data-chart]"));
  var drawn = charts.map(function (element) {
    var spec = JSON.parse(document.getElementById(element.dataset.spec).textContent);
    return vegaEmbed(element, spec, { actions: false, renderer: "svg" })
      .then(function () { element.dataset.rendered = "true"; })
      .catch(function (error) {
        element.dataset.rendered = "error";
        element.textContent = "This chart could not be drawn: " + error;
        console.error(error);
      });
  });
  Promise.all(drawn).then(function () { document.body.dataset.ready = "true"; });
})();
"""


# What vl-convert's bundle ends with by default: the three libraries as globals.
GLOBALS = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"


@cache
def vega_javascript() -> str:
    """Vega, Vega-Lite and vega-embed in one script (900 kB; 2.5 s to bundle, once a process),
    the Vega-Lite that Altair writes for."""
    return vl_convert.javascript_bundle(GLOBALS, vl_version=VEGA_LITE_VERSION)


def script_json(value: Any) -> str:
    """JSON that cannot end the <script> element holding it."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def inline_script(code: str) -> str:
    # "</script" inside the code would end the element early; "<\/" means the same in JS.
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


def figures_html(data: DashboardData) -> str:
    items = []
    for figure in data.figures:
        value = "" if figure.value is None else str(figure.value)
        items.append(
            f'<li data-figure="{escape(figure.key)}" data-value="{value}">'
            f'<span class="value">{escape(figure.text)}</span>'
            f'<span class="label">{escape(figure.label)}</span>'
            f'<span class="detail">{escape(figure.detail)}</span></li>'
        )
    return '<ul class="figures">' + "".join(items) + "</ul>"


def panel_html(panel: Panel) -> str:
    key = escape(panel.key)
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in panel.notes)
    question = f'<p class="question">{escape(panel.question)}</p>' if panel.question else ""
    return (
        f'<section class="panel{" wide" if panel.wide else ""}" id="panel-{key}">'
        f"<h2>{escape(panel.title)}</h2>{question}"
        f'<div class="chart" data-chart="{key}" data-spec="spec-{key}" '
        f'data-empty="{str(panel.is_empty).lower()}"></div>{notes}'
        f'<script type="application/json" id="spec-{key}">{script_json(panel.spec())}</script>'
        "</section>"
    )


def header_html(data: DashboardData) -> str:
    built = data.built_at.strftime("%Y-%m-%d %H:%M UTC")
    last_day = (data.latest_hour or data.built_at).date().isoformat()
    warnings = []
    if data.missing_marts:
        warnings.append(
            "Not built yet, so shown empty: " + ", ".join(data.missing_marts) + " (run dbt)."
        )
    warning_html = "".join(f'<p class="warnings">{escape(w)}</p>' for w in warnings)
    return (
        f"<header><h1>{TITLE}</h1>"
        f'<p class="meta">Built <time id="built-at" datetime="{data.built_at.isoformat()}">'
        f"{built}</time> from the warehouse's dbt marts. "
        f'Hourly charts: <span id="hours-covered" data-hours="{data.hours_covered}">'
        f"{escape(data.covered_text())}</span>; daily charts: up to {DAYS_SHOWN} days to "
        f"{last_day}. The latest hour is the crawler's latest relay snapshot.</p>"
        f"{warning_html}{figures_html(data)}</header>"
    )


def render_page(
    data: DashboardData, panels: Sequence[Panel], outlines_credit: bool, javascript: str
) -> str:
    """The whole page; ``javascript`` is vega_javascript() (a parameter, so tests can time it)."""
    credit = (
        f"Country outlines: {CREDIT}."
        if outlines_credit
        else "Country outlines: not installed (npm ci installs world-atlas)."
    )
    footer = (
        f"<footer><p>{escape(credit)} Charts: Vega, Vega-Lite and vega-embed (BSD-3-Clause), "
        "embedded from vl-convert. Nothing on this page loads from the network.</p></footer>"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE}</title><style>{STYLE}</style></head><body>"
        f"{header_html(data)}<main>{''.join(panel_html(p) for p in panels)}</main>{footer}"
        f"{inline_script(javascript)}{inline_script(SCRIPT)}</body></html>\n"
    )


def write_atomically(path: Path, text: str) -> int:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename, so a reader
    never sees half a page; returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; the page is for anyone to open
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(data)
