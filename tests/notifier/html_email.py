"""Read a received email's HTML back into clusters and table rows (stdlib parser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ParsedCluster:
    name: str = ""
    image: str | None = None
    link: str | None = None
    rows: list[list[str]] = field(default_factory=list)
    vehicle_links: list[str] = field(default_factory=list)


class _EmailParser(HTMLParser):
    """Collects what the template marks with classes: cluster-name, vehicle, ..."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.clusters: list[ParsedCluster] = []
        self.scripts = 0
        self._in_name = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        if tag == "h2" and "cluster-name" in classes:
            self.clusters.append(ParsedCluster())
            self._in_name = True
        elif tag == "img" and "cluster-image" in classes:
            self.clusters[-1].image = attributes.get("src")
        elif tag == "a" and "cluster-link" in classes:
            self.clusters[-1].link = attributes.get("href")
        elif tag == "a" and "vehicle-link" in classes:
            self.clusters[-1].vehicle_links.append(attributes.get("href") or "")
        elif tag == "tr" and "vehicle" in classes:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_name = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.clusters[-1].rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_name:
            self.clusters[-1].name += data
        if self._cell is not None:
            self._cell.append(data)


def parse_email_html(html: str) -> tuple[list[ParsedCluster], int]:
    """(clusters in order, number of <script> elements found)."""
    parser = _EmailParser()
    parser.feed(html)
    parser.close()
    for cluster in parser.clusters:
        cluster.name = " ".join(cluster.name.split())
    return parser.clusters, parser.scripts
