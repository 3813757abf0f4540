"""A small document model for the homework report, written out as Markdown and as one self-contained HTML page.

Text blocks take a light inline markup that both outputs understand: `code`, **bold** and links to a section,
[text](#anchor). A report in two Markdown files (the key and its evidence) links across them: ``to_markdown``
takes the anchors that live in the other file. A section marked ``collapsible`` is a closed ``<details>`` in HTML.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import pathlib
import re
from typing import Sequence, Union


@dataclasses.dataclass
class Paragraph:
    text: str


@dataclasses.dataclass
class Bullets:
    items: Sequence[str]


@dataclasses.dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""


@dataclasses.dataclass
class Figure:
    path: str  # relative to the report's directory
    caption: str = ""


@dataclasses.dataclass
class Quote:
    """The student's answer, as written in the homework."""

    text: str
    label: str = "Student's answer"


@dataclasses.dataclass
class Note:
    """A boxed remark: kind "correction" (red), "ok" (green) or "info" (blue); ``title`` names it (default: the
    kind's own title)."""

    text: str
    kind: str = "correction"
    title: str = ""

    @property
    def heading(self) -> str:
        return self.title or NOTE_TITLES[self.kind]


@dataclasses.dataclass
class Code:
    text: str


Block = Union[Paragraph, Bullets, Table, Figure, Quote, Note, Code]
NOTE_TITLES = {"correction": "Correction", "ok": "Verdict", "info": "Note"}


@dataclasses.dataclass
class Section:
    anchor: str
    title: str
    question: str = ""
    blocks: list = dataclasses.field(default_factory=list)
    level: int = 2
    collapsible: bool = False  # HTML: a <details> element, closed until opened or linked to


@dataclasses.dataclass
class Document:
    title: str
    header: Sequence[tuple[str, str]]  # key facts shown first (device, versions, data, time)
    sections: list[Section]
    banner: str = ""
    contents: bool = True  # a line of links to the level-2 sections, after the header


# ---------------------------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_LINK = re.compile(r"\]\(#([A-Za-z0-9_-]+)\)")


def _md_links(text: str, elsewhere: dict[str, str]) -> str:
    """[text](#anchor) pointed at the file that holds the anchor when it is not this one."""
    return _LINK.sub(lambda m: f"]({elsewhere[m.group(1)]}#{m.group(1)})" if m.group(1) in elsewhere
                     else m.group(0), text)


def _md_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                 "|" + "---|" * len(block.headers)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return (f"*{block.caption}*\n\n" if block.caption else "") + "\n".join(lines)
    if isinstance(block, Figure):
        return f"![{block.caption}]({block.path})" + (f"\n\n*{block.caption}*" if block.caption else "")
    if isinstance(block, Quote):
        return f"> **{block.label}:** " + "\n> ".join(block.text.splitlines())
    if isinstance(block, Note):
        return f"> **{block.heading}.** " + "\n> ".join(block.text.splitlines())
    if isinstance(block, Code):
        return f"```\n{block.text}\n```"
    raise TypeError(f"unknown block {block!r}")


def anchors_of(document: Document) -> list[str]:
    """The anchors of every section of the document."""
    return [section.anchor for section in document.sections]


def to_markdown(document: Document, elsewhere: dict[str, str] | None = None) -> str:
    """The report as Markdown; figures are linked by their relative paths, and links to the anchors named in
    ``elsewhere`` (anchor -> file) go to that file."""
    parts = [f"# {document.title}"]
    if document.banner:
        parts.append(f"> **{document.banner}**")
    if document.header:
        parts.append("\n".join(f"- **{key}:** {value}" for key, value in document.header))
    if document.contents:
        parts.append("Contents: " + " · ".join(f"[{s.title}](#{s.anchor})" for s in document.sections
                                               if s.level == 2))
    for section in document.sections:
        parts.append(f'<a id="{section.anchor}"></a>\n\n{"#" * section.level} {section.title}')
        if section.question:
            parts.append(f"**Question.** {section.question}")
        parts += [_md_block(block) for block in section.blocks]
    return _md_links("\n\n".join(parts), elsewhere or {}) + "\n"


# ---------------------------------------------------------------------------------------------- HTML

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;margin:0 auto;padding:1rem 1.5rem;
line-height:1.5;color:#1d2125;background:#fff}
h1{font-size:1.8rem;margin-bottom:.3rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.8rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:3px;font-size:.92em}
pre{background:#f6f8fa;padding:.7rem;overflow-x:auto;border-radius:4px}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}th,td{border:1px solid #d0d7de;padding:.25rem .55rem;
text-align:left;vertical-align:top}th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-style:italic;padding-bottom:.2rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9rem;color:#555}
.question{background:#f6f8fa;border-left:4px solid #57606a;padding:.4rem .8rem}
.quote{border-left:4px solid #bf8700;background:#fff8e6;padding:.4rem .8rem;margin:.8rem 0}
.note{padding:.4rem .8rem;margin:.8rem 0;border-radius:4px}
.note.correction{background:#ffebe9;border-left:4px solid #cf222e}
.note.ok{background:#dafbe1;border-left:4px solid #1a7f37}.note.info{background:#ddf4ff;border-left:4px solid #0969da}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:4px}
dl.header{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem}dl.header dt{font-weight:600}
dl.header dd{margin:0}nav{font-size:.92rem}
details{border-top:1px solid #d0d7de;padding:.2rem 0}details>summary{cursor:pointer}
details>summary>h2,details>summary>h3{display:inline-block;margin:.6rem 0;border:0}
"""

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(#([A-Za-z0-9_-]+)\)")
_NUMBER = re.compile(r"^[\s\-+−±.,0-9%×x/e()]+$")


def inline_html(text: str) -> str:
    """Escape text and turn `code`, **bold** and [text](#anchor) into HTML."""
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        code, bold, label, anchor = match.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif bold is not None:
            out.append(f"<strong>{html.escape(bold)}</strong>")
        else:
            out.append(f'<a href="#{anchor}">{html.escape(label)}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out).replace("\n", "<br>")


def image_source(path: pathlib.Path, embed: bool) -> str:
    """A data URI holding the PNG (embed) or the path as given."""
    if not embed:
        return html.escape(str(path))
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_block(block: Block, base: pathlib.Path, embed: bool) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{inline_html(h)}</th>" for h in block.headers)
        body = "".join("<tr>" + "".join(
            f'<td class="num">{inline_html(str(c))}</td>' if _NUMBER.match(str(c)) and str(c).strip()
            else f"<td>{inline_html(str(c))}</td>" for c in row) + "</tr>" for row in block.rows)
        caption = f"<caption>{inline_html(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        source = image_source(base / block.path, embed) if embed else html.escape(block.path)
        return (f'<figure><img src="{source}" alt="{html.escape(block.caption or block.path)}">'
                + (f"<figcaption>{inline_html(block.caption)}</figcaption>" if block.caption else "") + "</figure>")
    if isinstance(block, Quote):
        return f'<div class="quote"><strong>{html.escape(block.label)}:</strong> {inline_html(block.text)}</div>'
    if isinstance(block, Note):
        return (f'<div class="note {block.kind}"><strong>{html.escape(block.heading)}.</strong> '
                f"{inline_html(block.text)}</div>")
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    raise TypeError(f"unknown block {block!r}")


def to_html(document: Document, base: pathlib.Path, embed: bool = True) -> str:
    """The report as one HTML page; with ``embed`` every figure is inlined as a base64 PNG data URI, so the
    file alone is the whole report."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(document.title)}"
             f"</title><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style>"
             "</head><body>", f"<h1>{html.escape(document.title)}</h1>"]
    if document.banner:
        parts.append(f'<p class="banner">{inline_html(document.banner)}</p>')
    if document.header:
        parts.append('<dl class="header">' + "".join(f"<dt>{html.escape(k)}</dt><dd>{inline_html(v)}</dd>"
                                                       for k, v in document.header) + "</dl>")
    if document.contents:
        parts.append("<nav><strong>Contents:</strong> " + " · ".join(
            f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in document.sections if s.level == 2) + "</nav>")
    for section in document.sections:
        tag = f"h{section.level}"
        heading = f"<{tag}>{html.escape(section.title)}</{tag}>"
        if section.collapsible:
            parts.append(f'<details id="{section.anchor}"><summary>{heading}</summary>')
        else:
            parts.append(f'<section id="{section.anchor}">{heading}')
        if section.question:
            parts.append(f'<div class="question"><strong>Question.</strong> {inline_html(section.question)}</div>')
        parts += [_html_block(block, base, embed) for block in section.blocks]
        parts.append("</details>" if section.collapsible else "</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def figures_of(document: Document) -> list[str]:
    """The relative paths of every figure in the document."""
    return [b.path for s in document.sections for b in s.blocks if isinstance(b, Figure)]
