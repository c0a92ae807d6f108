"""Every link of the README and the docs/ pages leads somewhere, and every page can be reached.

Pure and offline: a relative link must name a file of the checkout and its ``#anchor`` a heading of
that page (GitHub's slugs); an http(s) link is only checked for its shape.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.fixtures.docs import README, REPO, pages

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """``text`` without code blocks and inline code, where a bracket is not a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text without markup, lower case, punctuation dropped
    (letters, digits, ``_`` and ``-`` kept), spaces as ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").lower()
    kept = "".join(char for char in text if char in " -_" or unicodedata.category(char)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub gives ``page``'s headings, repeated headings numbered ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text()))


def broken(page: Path, root: Path = REPO) -> list[str]:
    """What is wrong with each link of ``page`` in the checkout at ``root``, one line each."""
    problems = []
    for target in links(page):
        parts = urlsplit(target)
        if parts.scheme in ("http", "https"):
            if not parts.netloc or " " in target:
                problems.append(f"{target}: not a well-formed URL")
            continue
        if parts.scheme or parts.netloc:
            problems.append(f"{target}: only relative links and http(s) URLs are expected")
            continue
        path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if root not in path.parents and path != root:
            problems.append(f"{target}: leaves the repository")
        elif not path.exists():
            problems.append(f"{target}: no such file")
        elif parts.fragment:
            if path.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not a page")
            elif unquote(parts.fragment) not in anchors(path):
                problems.append(f"{target}: {path.relative_to(root)} has no such heading")
    return problems


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_every_link_resolves(page):
    assert broken(page) == []


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_every_code_block_is_closed(page):
    """An unclosed fence swallows the prose after it, and a snippet test would take it as code."""
    fences = [line for line in page.read_text().splitlines() if line.startswith("```")]
    openings, closings = fences[::2], fences[1::2]
    assert len(fences) % 2 == 0 and all(line == "```" for line in closings), openings


def test_every_docs_page_is_reachable_from_the_readme():
    reached, todo = set(), [README]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for target in links(page):
            parts = urlsplit(target)
            if not parts.scheme and parts.path.endswith(".md"):
                path = (page.parent / unquote(parts.path)).resolve()
                if path.exists():
                    todo.append(path)
    assert [str(page.relative_to(REPO)) for page in pages() if page not in reached] == []


def test_the_checker_finds_what_is_broken(tmp_path):
    """Control: a missing file, a missing heading, a link out of the checkout and a malformed URL are
    each reported, and the slugs are GitHub's (backticks, punctuation, a repeated heading)."""
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    (tmp_path / "other.md").write_text("# Other\n")
    page.write_text(
        "# A `code` title: with punctuation…\n\n## Again\n\n## Again\n\n```\n# not a heading\n```\n\n"
        "[ok](#a-code-title-with-punctuation) [ok](#again-1) [ok](../other.md#other) [bad](#again-2)\n"
        "[bad](#not-a-heading) [file](missing.md) [out](../../elsewhere.md) [url](https://)\n"
        "`[not a link](nowhere.md)`\n"
    )
    assert broken(page, root=tmp_path) == [
        "#again-2: docs/page.md has no such heading",
        "#not-a-heading: docs/page.md has no such heading",
        "missing.md: no such file",
        "../../elsewhere.md: leaves the repository",
        "https://: not a well-formed URL",
    ]
