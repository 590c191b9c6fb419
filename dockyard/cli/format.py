"""docker's formatter: ``--format`` (``table …``, ``json``, Go templates) and Go's tabwriter."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.cli.gofuncs import HEADER_FUNCS, to_json
from dockyard.cli.gotemplate import Template, TemplateError

__all__ = ["Format", "TemplateError", "ellipsis", "render", "resolve", "tabwrite", "truncate_id"]


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter (padchar ' ', no flags): tab-terminated cells aligned in blocks."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(start: int, end: int) -> None:
        for row in lines[start:end]:
            for j, cell in enumerate(row):
                if j < len(widths) and j < len(row) - 1:
                    out.append(cell + " " * max(0, widths[j] - len(cell)))
                else:
                    out.append(cell)
            out.append("\n")

    def fmt(line0: int, line1: int) -> int:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)
        return line1

    fmt(0, len(lines))
    result = "".join(out)
    return result[:-1]  # the split added one line too many


@dataclass(frozen=True)
class Format:
    template: str
    table: bool


def resolve(fmt: str | None, default_table: str) -> Format:
    """docker's preFormat: ``""``/``table`` → default, ``table X``, ``json``, or raw."""
    text = (fmt or "").strip() if fmt is not None else ""
    if text in ("", "table"):
        text = default_table
    if text == "json":
        return Format("{{json .}}", False)
    table = text.startswith("table")
    if table:
        text = text[len("table"):]
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return Format(text, table)


def render(fmt: Format, rows: Iterable[Any], headers: Mapping[str, str]) -> str:
    """Rows through the template; tables get a header line and tabwriter alignment."""
    try:
        tmpl = Template(fmt.template)
    except TemplateError as exc:
        raise TemplateError(f"template parsing error: {exc}") from None
    try:
        body = "".join(tmpl.execute(row) + "\n" for row in rows)
    except TemplateError as exc:
        raise TemplateError(f"failed to execute template: {exc}") from None
    if not fmt.table:
        return body
    header = Template(fmt.template, HEADER_FUNCS).execute(_HeaderMap(headers), partial=True)
    return tabwrite(header + "\n" + body)


class _HeaderMap(dict[str, str]):
    """Missing header keys render empty, like Go's map[string]string zero values."""

    def __missing__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return True


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to ``width`` display columns, ending in ``…``."""
    if len(text) <= width:
        return text
    if width <= 0:
        return ""
    return text[:width - 1] + "…"


def truncate_id(ident: str) -> str:
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def json_line(value: Any) -> str:
    return to_json(value)
