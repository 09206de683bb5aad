"""Read a received email's HTML back into clusters and cars (stdlib parser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ParsedVehicle:
    badge: str = ""
    label: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    link: str | None = None

    @property
    def row(self) -> list[str]:
        """Everything shown of the car, in order: badge and label, the fields'
        values, the notes."""
        return [f"{self.badge} {self.label}", *self.fields.values(), *self.notes]


@dataclass
class ParsedCluster:
    name: str = ""
    image: str | None = None
    link: str | None = None
    vehicles: list[ParsedVehicle] = field(default_factory=list)

    @property
    def rows(self) -> list[list[str]]:
        return [vehicle.row for vehicle in self.vehicles]

    @property
    def vehicle_links(self) -> list[str]:
        return [v.link for v in self.vehicles if v.link is not None]


@dataclass
class ParsedEmail:
    clusters: list[ParsedCluster] = field(default_factory=list)
    scripts: int = 0
    intro: str = ""
    left_out: list[str] = field(default_factory=list)
    footer: str = ""
    footer_links: list[str] = field(default_factory=list)


class _EmailParser(HTMLParser):
    """Collects what the template marks with classes: cluster-name, vehicle, ..."""

    # class → where its text goes
    TEXT_CLASSES = ("cluster-name", "badge", "label", "note", "intro", "footer")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.email = ParsedEmail()
        self._capture: list[tuple[str, list[str]]] = []  # (class, text so far)
        self._field: list[list[str]] | None = None  # the cells of a field row
        self._cell: list[str] | None = None
        self._in_footer = False

    @property
    def _cluster(self) -> ParsedCluster:
        return self.email.clusters[-1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "script":
            self.email.scripts += 1
        if "cluster" in classes:
            self.email.clusters.append(ParsedCluster())
        elif "vehicle" in classes:
            self._cluster.vehicles.append(ParsedVehicle())
        elif tag == "img" and "cluster-image" in classes:
            self._cluster.image = attributes.get("src")
        elif tag == "a" and "cluster-link" in classes:
            self._cluster.link = attributes.get("href")
        elif tag == "a" and "vehicle-link" in classes:
            self._cluster.vehicles[-1].link = attributes.get("href") or ""
        elif tag == "tr" and "field" in classes:
            self._field = []
        elif tag == "td" and self._field is not None:
            self._cell = []
        elif tag == "a" and self._in_footer:
            self.email.footer_links.append(attributes.get("href") or "")
        if "left-out-model" in classes:
            self._capture.append(("left-out-model", []))
        for name in self.TEXT_CLASSES:
            if name in classes:
                self._capture.append((name, []))
                if name == "footer":
                    self._in_footer = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._field is not None and self._cell is not None:
            self._field.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._field is not None:
            name, value = self._field
            self._cluster.vehicles[-1].fields[name] = value
            self._field = None
        elif tag in ("h2", "span", "b", "p") and self._capture:
            name, parts = self._capture.pop()
            text = " ".join("".join(parts).split())
            if name == "cluster-name":
                self._cluster.name = text
            elif name == "badge":
                self._cluster.vehicles[-1].badge = text
            elif name == "label":
                self._cluster.vehicles[-1].label = text
            elif name == "note":
                self._cluster.vehicles[-1].notes.append(text)
            elif name == "intro":
                self.email.intro = text
            elif name == "left-out-model":
                self.email.left_out.append(text)
            elif name == "footer":
                self.email.footer = text
                self._in_footer = False

    def handle_data(self, data: str) -> None:
        for _, parts in self._capture:
            parts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse_email(html: str) -> ParsedEmail:
    """Everything the template marks, in order."""
    parser = _EmailParser()
    parser.feed(html)
    parser.close()
    return parser.email


def parse_email_html(html: str) -> tuple[list[ParsedCluster], int]:
    """(clusters in order, number of <script> elements found)."""
    email = parse_email(html)
    return email.clusters, email.scripts
