"""The README and docs/: a README that fits on a screen, links that resolve inside the repository.

Reads the real files of the checkout; the helpers are tested on small texts first, so that a
link check that found nothing cannot pass for one that checked everything.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
# every markdown file a reader reaches from the README
PAGES = [README, *DOCS, REPO / "config" / "README.md", REPO / "benchmarks" / "README.md"]
RESULTS_PAGES = ["results.md", "results-tegridy.md", "linkprediction.md"]
QUICK_START = (
    "python3 -m pip install -e . && snakemake --cores 8",
    'python3 -m pip install -e ".[test]" && python3 -m pytest',
)

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str, keep_code_spans: bool = False) -> list[str]:
    """The lines of a markdown text outside fenced code blocks; inline code spans removed unless
    ``keep_code_spans`` (a heading's anchor keeps their text)."""
    out, fence = [], None
    for line in text.splitlines():
        marker = re.match(r"^\s*(`{3,}|~{3,})", line)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
            elif marker.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            out.append(line if keep_code_spans else re.sub(r"(`+).*?\1", "", line))
    return out


def links(text: str) -> list[str]:
    """Every link target of a markdown text (inline, image and reference links), in order."""
    found = []
    for line in prose_lines(text):
        found += INLINE_LINK.findall(line)
        ref = REFERENCE_LINK.match(line)
        if ref:
            found.append(ref.group(1))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a markdown text's headings, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(text, keep_code_spans=True):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken(page: Path, target: str, root: Path) -> str | None:
    """Why a link target of ``page`` does not resolve to a file (and heading) inside ``root``."""
    if SCHEME.match(target):
        return None if target.startswith(("http://", "https://")) else "not a web or relative link"
    path_part, _, anchor = target.partition("#")
    if path_part.startswith("/"):
        return "absolute path"
    dest = (page.parent / path_part).resolve() if path_part else page.resolve()
    if not dest.is_relative_to(root.resolve()):
        return "outside the repository"
    if not dest.exists():
        return "no such file"
    if anchor:
        if not dest.is_file() or dest.suffix != ".md":
            return "an anchor into something that is not a markdown file"
        if anchor not in anchors(dest.read_text()):
            return f"no heading #{anchor} in {dest.relative_to(root.resolve())}"
    return None


# --------------------------------------------------------------------------- the helpers


def test_links_are_found_outside_code_only():
    text = (
        'See [a](docs/a.md) and ![img](fig.png "t") and `[not](code.md)`.\n'
        "```bash\n[neither](x.md)\n```\n"
        "[ref]: ../elsewhere.md\n"
        "Two [b](b.md#part) [c](https://example.org/c) on a line.\n"
    )
    assert links(text) == [
        "docs/a.md",
        "fig.png",
        "../elsewhere.md",
        "b.md#part",
        "https://example.org/c",
    ]


def test_anchors_follow_github_slugs():
    text = (
        "# Results: the Tegridy data\n## Choosing `lambda` for fused sampling\n## Notes\n## Notes\n"
    )
    assert anchors(text) == {
        "results-the-tegridy-data",
        "choosing-lambda-for-fused-sampling",
        "notes",
        "notes-1",
    }


def test_broken_names_each_way_a_link_fails(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    page = root / "docs" / "a.md"
    page.write_text("# Top\n## A part\n")
    (root / "data.tsv").write_text("x\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "DESIGN.md").write_text("# Design\n")
    assert broken(page, "a.md#a-part", root) is None
    assert broken(page, "#top", root) is None
    assert broken(page, "../data.tsv", root) is None
    assert broken(page, "https://example.org", root) is None
    assert broken(page, "../../shared/DESIGN.md", root) == "outside the repository"
    assert broken(page, "/etc/passwd", root) == "absolute path"
    assert broken(page, "file:///etc/passwd", root) == "not a web or relative link"
    assert broken(page, "b.md", root) == "no such file"
    assert broken(page, "a.md#no-part", root) == "no heading #no-part in docs/a.md"
    assert broken(page, "../data.tsv#x", root) == (
        "an anchor into something that is not a markdown file"
    )


# --------------------------------------------------------------------------- the real pages


def test_readme_fits_on_a_screen():
    text = README.read_text()
    assert text.count("\n") <= 200, f"README.md has {text.count(chr(10))} lines (at most 200)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves_inside_the_repository(page):
    text = page.read_text()
    bad = [(t, why) for t in links(text) if (why := broken(page, t, REPO))]
    assert not bad, bad


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_sends_readers_to_the_development_checkout(page):
    """``../shared`` (design notes, Tegridy fixtures) is beside a development checkout only."""
    assert "../shared" not in page.read_text(), f"{page.relative_to(REPO)} names ../shared"


def test_readme_links_every_page_of_docs():
    assert DOCS, "docs/ has no pages"
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README.read_text())}
    missing = [p.name for p in DOCS if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_results_pages_name_the_commit_their_numbers_were_measured_at():
    for name in RESULTS_PAGES:
        text = (REPO / "docs" / name).read_text()
        assert re.search(r"(?:measured|recorded) at commits? \*\*[0-9a-f]{7,40}\*\*", text, re.I), (
            f"docs/{name} does not say at which commit its numbers were measured"
        )


def test_quick_start_commands_are_the_two_that_ci_runs():
    """The README's two commands, byte for byte; .ci/run installs and tests the same way."""
    lines = README.read_text().splitlines()
    start = lines.index("## Quick start")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    section = lines[start:end]
    commands = [line for line in section if line.startswith("python3 ")]
    assert commands == list(QUICK_START), commands
    ci = (REPO / ".ci" / "run").read_text()
    assert 'python3 -m pip install -q -e ".[test]"' in ci
    assert "\npython3 -m pytest\n" in ci
