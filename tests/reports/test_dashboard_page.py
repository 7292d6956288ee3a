"""Protects the dashboard page without any data: a fresh install (no warehouse file, or one dbt
never built) still gets a whole page whose every chart says why it is empty; the page refers
to nothing outside itself; it is written atomically; country outlines are read leniently.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

import duckdb
import pytest
from dashboard_page_reader import datasets, read_page

from nostr_assets.lib.reports.country_outlines import read_country_outlines
from nostr_assets.lib.reports.dashboard import build_dashboard
from nostr_assets.lib.reports.dashboard_page import script_json, write_atomically
from nostr_assets.lib.reports.dashboard_tables import software_label
from nostr_assets.lib.reports.mart_reader import MARTS
from nostr_assets.lib.warehouse.schema import ensure_raw_tables

BUILT_AT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
ORDER = [
    "relay_map",
    "events_by_kind",
    "relay_uptime",
    "active_authors",
    "zaps",
    "relay_coverage",
    "replication",
    "nip_support",
    "software",
    "long_form",
]
CHARTS = set(ORDER)


def test_no_warehouse_yet_gives_a_whole_page_of_empty_states(tmp_path):
    dashboard = build_dashboard(None, BUILT_AT, tmp_path / "no-atlas.json")
    page = read_page(dashboard.html)
    assert set(page.charts) == set(page.specs) == CHARTS
    assert all(chart["data-empty"] == "true" for chart in page.charts.values())
    assert set(page.figures.values()) == {""}
    assert set(page.figure_texts.values()) == {"no data"}
    assert page.hours_covered == 0
    # Each empty chart is a chart that says why, so the page and the PNGs still draw.
    for key, spec in page.specs.items():
        (rows,) = [t for t in datasets(spec) if t and "message" in t[0]]
        assert rows[0]["message"].startswith("No "), key
    assert "No country outlines" in "".join(page.text)


def test_a_warehouse_dbt_never_built_names_the_missing_marts(tmp_path):
    database = tmp_path / "nostr.duckdb"
    with duckdb.connect(str(database)) as conn:
        ensure_raw_tables(conn)
    with duckdb.connect(str(database), read_only=True) as conn:
        dashboard = build_dashboard(conn, BUILT_AT, tmp_path / "no-atlas.json")
    assert dashboard.data.missing_marts == MARTS
    assert all(panel.is_empty for panel in dashboard.panels)
    text = "".join(read_page(dashboard.html).text)
    assert "Not built yet, so shown empty: fct_relays_by_country, fct_events_hourly" in text
    zaps = next(p for p in dashboard.panels if p.key == "zaps").spec()
    assert datasets(zaps) == [[{"message": "No zaps yet: dbt has not built fct_zaps_daily"}]]


def test_the_page_refers_to_nothing_outside_itself(tmp_path):
    html = build_dashboard(None, BUILT_AT, tmp_path / "no-atlas.json").html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="application/json" id="spec-' + k + '">' for k in ORDER] + [
        "<script>",
        "<script>",
    ]
    # Outside the scripts, no element that loads something: no link, image, frame or object.
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.DOTALL)
    assert not re.search(r"<(link|img|iframe|object|embed|video|audio)\b", markup, re.I)
    assert " src=" not in markup and " href=" not in markup
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", html, re.IGNORECASE)
    # And the browser is told to fetch nothing, whatever a specification might name.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp and "default-src 'none'" in csp.group(1)
    assert "connect-src" not in csp.group(1)  # falls back to default-src 'none'
    # Vega, Vega-Lite and vega-embed, once.
    assert html.count("window.vegaEmbed=") == 1


def test_json_in_the_page_cannot_close_its_script_element():
    text = script_json({"software": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"software": "</script><b>&"}


@pytest.mark.parametrize(
    ("software", "label"),
    [
        ("git+https://github.com/hoytech/strfry.git", "hoytech/strfry"),
        ("https://git.sr.ht/~gheartsfield/nostr-rs-relay", "~gheartsfield/nostr-rs-relay"),
        ("https://github.com/scsibug/nostr-rs-relay/", "scsibug/nostr-rs-relay"),
        ("(unknown)", "(unknown)"),
        ("khatru", "khatru"),
        ("x" * 100, "x" * 39 + "…"),
    ],
)
def test_software_labels_are_short(software, label):
    assert software_label(software) == label


def test_the_page_is_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "reports" / "network.html"
    assert write_atomically(path, "<p>first</p>") == len("<p>first</p>")
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    write_atomically(path, "<p>second é</p>")
    assert path.read_text(encoding="utf-8") == "<p>second é</p>"

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, "<p>third</p>")
    assert path.read_text(encoding="utf-8") == "<p>second é</p>"
    assert sorted(p.name for p in path.parent.iterdir()) == ["network.html"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "is absent"),
        ("{not json", "is unreadable"),
        ('{"type": "FeatureCollection", "features": []}', "not world-atlas's countries"),
        ('{"type": "Topology", "objects": {"land": {}}}', "not world-atlas's countries"),
        ("[1, 2]", "not world-atlas's countries"),
    ],
)
def test_country_outlines_that_cannot_be_used_are_a_reason(tmp_path, content, why):
    path = tmp_path / "countries-110m.json"
    if content is not None:
        path.write_text(content)
    outlines = read_country_outlines(path)
    assert outlines.topology is None
    assert why in outlines.why_missing
