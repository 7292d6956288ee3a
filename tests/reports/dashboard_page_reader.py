"""Reads back what a dashboard page shows: its key figures, its charts' containers and the data
inline in each chart's Vega-Lite specification, the way a browser would find them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any


@dataclass
class PageContents:
    figures: dict[str, str] = field(default_factory=dict)  # key -> data-value ("" = no data)
    figure_texts: dict[str, str] = field(default_factory=dict)  # key -> the number as shown
    charts: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> container attrs
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> Vega-Lite spec
    hours_covered: int | None = None
    text: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = PageContents()
        self._spec: str | None = None
        self._figure: str | None = None
        self._in_value = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "li" and "data-figure" in a:
            self._figure = a["data-figure"]
            self.page.figures[self._figure] = a["data-value"]
        if tag == "span" and a.get("class") == "value" and self._figure:
            self._in_value = True
        if tag == "span" and a.get("id") == "hours-covered":
            self.page.hours_covered = int(a["data-hours"])
        if tag == "div" and "data-chart" in a:
            self.page.charts[a["data-chart"]] = a
        if tag == "script" and a.get("type") == "application/json":
            self._spec = a["id"].removeprefix("spec-")

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._figure = None
        if tag == "span":
            self._in_value = False
        if tag == "script":
            self._spec = None

    def handle_data(self, data: str) -> None:
        if self._spec is not None:
            self.page.specs[self._spec] = json.loads(data)
        elif self._in_value and self._figure:
            self.page.figure_texts[self._figure] = data
        else:
            self.page.text.append(data)


def read_page(html: str) -> PageContents:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page


def datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every inline table of a specification: named datasets and inline ``values`` lists."""
    found = [v for v in spec.get("datasets", {}).values() if isinstance(v, list)]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("values"), list):
                found.append(node["values"])
            for key, value in node.items():
                if key != "datasets":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec)
    return found


def rows_with(spec: dict[str, Any], column: str) -> list[dict[str, Any]]:
    """The one inline table whose rows have ``column``."""
    tables = [t for t in datasets(spec) if t and column in t[0]]
    assert len(tables) == 1, f"{len(tables)} tables with {column!r}"
    return tables[0]
