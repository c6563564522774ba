"""The pages a reader follows: every relative link and anchor in README.md, BENCHMARKS.md and docs/*.md
resolves, README maps every page of docs/, and the two front pages stay short enough to read.

Markdown is parsed with markdown-it-py (installed with Dagster, through rich), so links inside code
spans and fenced blocks are not links, and reference-style links resolve as GitHub renders them.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from zfish_assets import settings

ROOT = settings.REPO_ROOT
README, BENCHMARKS = ROOT / "README.md", ROOT / "BENCHMARKS.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, BENCHMARKS, *DOCS]
MAX_LINES = {README: 200, BENCHMARKS: 250}
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")  # http:, mailto:, protocol-relative: not ours to check
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""")
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")  # GitHub's anchors into a source file's lines
MARKDOWN = MarkdownIt("commonmark").enable("table")


@cache
def tokens(page: Path) -> list[Token]:
    return MARKDOWN.parse(page.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (github-slugger): lower case, every character that is not
    a letter, digit, `_`, `-` or space dropped, spaces turned into `-`. Written here because no
    package of the lock implements GitHub's rule (markdown-it's anchors plugin slugs differently)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def inline_text(inline: Token) -> str:
    """A heading's text as rendered: code spans and link texts included, markup left out."""
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


@cache
def anchors(page: Path) -> frozenset[str]:
    """Every anchor GitHub gives `page`: one per heading (a repeated slug gets `-1`, `-2`, ...), and
    the `id`/`name` of raw `<a>` tags."""
    found: list[str] = []
    stream = tokens(page)
    for i, token in enumerate(stream):
        if token.type == "heading_open":
            base = slug(inline_text(stream[i + 1]))
            repeats = sum(1 for a in found if a == base or re.fullmatch(re.escape(base) + r"-\d+", a))
            found.append(base if not repeats else f"{base}-{repeats}")
        if token.type in ("html_block", "html_inline"):
            found += HTML_ANCHOR.findall(token.content)
        for child in token.children or []:
            if child.type == "html_inline":
                found += HTML_ANCHOR.findall(child.content)
    return frozenset(found)


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image in `page`, Markdown or raw HTML, outside code."""
    found = []
    for token in tokens(page):
        line = token.map[0] + 1 if token.map else 0
        if token.type == "html_block":
            found += [(line, target) for target in HTML_LINK.findall(token.content)]
        for child in token.children or []:
            if child.type == "link_open":
                found.append((line, str(child.attrs["href"])))
            elif child.type == "image":
                found.append((line, str(child.attrs["src"])))
            elif child.type == "html_inline":
                found += [(line, target) for target in HTML_LINK.findall(child.content)]
    return found


def broken(page: Path, target: str) -> str | None:
    """Why `target`, linked from `page`, does not resolve (None when it does)."""
    path, _, fragment = target.partition("#")
    resolved = (page.parent / unquote(path)).resolve() if path else page
    if not resolved.is_relative_to(ROOT):
        return f"{path} leads out of the repository"
    if not resolved.exists():
        return f"{resolved.relative_to(ROOT)} does not exist"
    if not fragment:
        return None
    if resolved.suffix != ".md":
        return None if LINE_ANCHOR.match(fragment) else f"#{fragment} is no line anchor (#L12 or #L12-L20)"
    if unquote(fragment) in anchors(resolved):
        return None
    close = sorted(a for a in anchors(resolved) if a.split("-")[0] == fragment.split("-")[0])
    return f"{resolved.relative_to(ROOT)} has no heading #{fragment}" + (f" (has: {', '.join(close)})" if close else "")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page):
    failures = [f"{page.relative_to(ROOT)}:{line}: ({target}) {reason}" for line, target in links(page)
                if not SCHEME.match(target) and (reason := broken(page, target))]
    assert not failures, "links that do not resolve:\n" + "\n".join(failures)


@pytest.mark.parametrize("page", MAX_LINES, ids=lambda p: p.name)
def test_the_front_pages_stay_short(page):
    lines = len(page.read_text().splitlines())
    assert lines <= MAX_LINES[page], (f"{page.name} has {lines} lines, more than {MAX_LINES[page]}: move detail to a "
                                      f"page of docs/ and link it")


def test_readme_maps_every_page_of_docs():
    linked = {(README.parent / unquote(t.partition("#")[0])).resolve() for _, t in links(README) if not SCHEME.match(t)}
    unmapped = [p.relative_to(ROOT).as_posix() for p in DOCS if p.resolve() not in linked]
    assert DOCS and not unmapped, f"pages of docs/ README.md does not link: {unmapped}"


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Glue 5.1 beside 5.0", "glue-51-beside-50"),
    ("Checks: `zfish check` and CI", "checks-zfish-check-and-ci"),
    ("Athena's SQL on Trino", "athenas-sql-on-trino"),
    ("The deployment's parts", "the-deployments-parts"),
    ("Évaluation_rapide — 2×", "évaluation_rapide--2"),
])
def test_slug_follows_githubs_rule(heading, anchor):
    # Expected anchors worked out by hand from github-slugger's rule: code marks, `'`, `:`, `.`, `—` and
    # `×` dropped, letters (accented ones too), digits and `_` kept, each space a `-`.
    assert slug(inline_text(MARKDOWN.parse(f"# {heading}\n")[1])) == anchor


def test_a_broken_link_and_anchor_are_named(tmp_path, monkeypatch):
    """The checker itself, on a page written here: a missing file, a missing heading and a link out
    of the repository are reported; a link in a code span is no link."""
    tmp_path = tmp_path.resolve()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/a.md#twice-1) [gone](docs/b.md) [no heading](docs/a.md#thrice) "
                    "[out](../x.md) `[code](docs/c.md)` [self](#top)\n\n# Top\n")
    found = {target: broken(page, target) for _, target in links(page)}
    assert found == {"docs/a.md#twice-1": None, "docs/b.md": "docs/b.md does not exist",
                     "docs/a.md#thrice": "docs/a.md has no heading #thrice", "../x.md": "../x.md leads out of the repository",
                     "#top": None}
