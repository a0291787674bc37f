"""The docs cannot drift from the code they show, and their links lead somewhere.

* A ```python block right after a ``<!-- snippet: PATH -->`` line must appear, line for line,
  in PATH (relative to the repository root). Lines are compared with surrounding whitespace
  trimmed, so a block may be dedented from a function body.
* Every relative link in docs/ and README.md must name a file that exists, and an anchor
  (``page.md#heading``) must name a heading of that page.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

MARKER_RE = re.compile(r"^<!--\s*snippet:\s*(?P<path>\S+)\s*-->\s*$")
FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
LINK_RE = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE_RE = re.compile(r"`[^`]*`")
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it starts (1-based), its language, its lines."""

    line: int
    lang: str
    lines: list[str]


def parse(text: str) -> tuple[list[tuple[int, str]], list[Block], list[tuple[Block, str]]]:
    """(prose lines with their numbers, all code blocks, (block, marker path) pairs)."""
    prose: list[tuple[int, str]] = []
    blocks: list[Block] = []
    marked: list[tuple[Block, str]] = []
    lines = text.splitlines()
    pending: tuple[int, str] | None = None  # a marker waiting for its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER_RE.match(line.strip())
        if marker:
            if pending is not None:
                raise AssertionError(f"line {pending[0]}: snippet marker not followed by ```python")
            pending = (i + 1, marker["path"])
            i += 1
            continue
        fence = FENCE_RE.match(line)
        if fence:
            close = fence["fence"]
            body: list[str] = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(close):
                body.append(lines[j])
                j += 1
            block = Block(i + 1, fence["lang"].lower(), body)
            blocks.append(block)
            if pending is not None:
                if block.lang != "python":
                    raise AssertionError(
                        f"line {pending[0]}: snippet marker is followed by a "
                        f"```{block.lang} block, not ```python"
                    )
                marked.append((block, pending[1]))
                pending = None
            i = j + 1
            continue
        if pending is not None:
            raise AssertionError(
                f"line {pending[0]}: snippet marker must be the line right before ```python"
            )
        prose.append((i + 1, line))
        i += 1
    if pending is not None:
        raise AssertionError(f"line {pending[0]}: snippet marker at the end of the page")
    return prose, blocks, marked


def trimmed(lines: list[str]) -> list[str]:
    """Dedented, stripped lines, without leading or trailing blank lines."""
    out = [line.strip() for line in textwrap.dedent("\n".join(lines)).splitlines()]
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def contains(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return any(haystack[k : k + width] == needle for k in range(len(haystack) - width + 1))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose, _, _ = parse(page.read_text())
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_there_are_pages_to_check():
    assert ROOT / "README.md" in PAGES
    assert len(PAGES) > 5


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_marked_snippets_are_verbatim_copies(page: Path):
    _, _, marked = parse(page.read_text())
    problems = []
    for block, source in marked:
        path = ROOT / source
        if not path.is_file():
            problems.append(f"line {block.line}: snippet source {source} does not exist")
            continue
        needle = trimmed(block.lines)
        if not needle:
            problems.append(f"line {block.line}: empty snippet")
        elif not contains([line.strip() for line in path.read_text().splitlines()], needle):
            problems.append(f"line {block.line}: this ```python block is not in {source}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "operators").glob("*.md")), ids=page_id)
def test_every_operator_page_shows_code_from_the_examples(page: Path):
    _, _, marked = parse(page.read_text())
    assert any(source.startswith("dags_examples/") for _, source in marked), (
        f"{page_id(page)} has no <!-- snippet: dags_examples/... --> block"
    )


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_lead_to_existing_files_and_headings(page: Path):
    prose, _, _ = parse(page.read_text())
    problems = []
    for number, line in prose:
        for match in LINK_RE.finditer(INLINE_CODE_RE.sub("", line)):
            target = match["target"]
            if target.startswith(EXTERNAL):
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.is_file():
                problems.append(f"line {number}: {target} is not a file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"line {number}: {target}: no heading #{anchor}")
    assert not problems, "\n".join(problems)
