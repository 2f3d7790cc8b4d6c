"""Every relative link in the repository's Markdown resolves: to a file or folder that exists and, for
`#anchor` into a Markdown file, to one of its headings.

The documents name code and test files by link, so a file that moves fails this test and names the
documents to update. Markdown is parsed with markdown-it-py (CommonMark, plus GitHub's tables), so a link
inside a code span or a code block is not mistaken for one, and a link in a table cell is still found.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token


def _repository_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise RuntimeError("no pyproject.toml above this test")


ROOT = _repository_root()
# A scheme (http:, https:, mailto:, ...) or a protocol-relative URL: not a file of this repository.
ABSOLUTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")
# What GitHub drops from a heading's text when it makes the anchor: anything but letters, marks,
# numbers, connector punctuation (the underscore), spaces and hyphens.
NOT_IN_SLUG = re.compile(r"[^\w\- ]")
_PARSER = MarkdownIt("commonmark").enable("table")


def tracked_markdown_files() -> list[str]:
    git = shutil.which("git")
    assert git is not None, "git lists the tracked Markdown files"
    listed = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
        [git, "ls-files", "-z", "--", "*.md"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    # A file deleted in the working tree but not yet in the index has no links left to check.
    return sorted(name for name in listed.split("\0") if name and (ROOT / name).is_file())


def _inline_tokens(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        if token.type == "inline" and token.children is not None:
            yield from token.children


def link_targets(markdown: str) -> list[str]:
    """The href of every link and the src of every image, in document order."""
    targets = []
    for token in _inline_tokens(_PARSER.parse(markdown)):
        if token.type == "link_open":
            targets.append(str(token.attrs["href"]))
        elif token.type == "image":
            targets.append(str(token.attrs["src"]))
    return targets


def github_slug(heading_text: str) -> str:
    return NOT_IN_SLUG.sub("", heading_text.strip().lower()).replace(" ", "-")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: repeated slugs get -1, -2, ... in document order."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    tokens = _PARSER.parse(markdown)
    for opening, inline in pairwise(tokens):
        if opening.type != "heading_open" or inline.children is None:
            continue
        text = "".join(child.content for child in inline.children if child.type in {"text", "code_inline"})
        slug = github_slug(text)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(document: Path, root: Path) -> list[str]:
    """Each relative link of `document` that does not resolve, with the reason."""
    markdown = document.read_text(encoding="utf-8")
    root = root.resolve()
    problems = []
    for target in link_targets(markdown):
        if ABSOLUTE.match(target):
            continue
        parts = urlsplit(target)
        path, anchor = unquote(parts.path), unquote(parts.fragment)
        resolved = (document.parent / path).resolve() if path else document.resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{target}: no such file or folder")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved.read_text("utf-8")):
            problems.append(f"{target}: no heading with the anchor #{anchor} in {resolved.relative_to(root)}")
    return problems


def test_the_repository_has_markdown_to_check() -> None:
    assert "README.md" in tracked_markdown_files()


@pytest.mark.parametrize("name", tracked_markdown_files())
def test_every_relative_link_resolves(name: str) -> None:
    problems = broken_links(ROOT / name, ROOT)
    assert not problems, f"{name} has links that do not resolve:\n" + "\n".join(problems)


# The checker itself, on a throwaway tree: each kind of broken link is reported, and nothing else.


def test_links_and_images_are_found_but_not_inside_code() -> None:
    markdown = "[a](a.md) ![b](b.png) `[c](c.md)`\n\n```\n[d](d.md)\n```\n\n| x |\n|---|\n| [e](e.md#f) |\n"
    assert link_targets(markdown) == ["a.md", "b.png", "e.md#f"]


def test_headings_get_githubs_anchors() -> None:
    markdown = (
        "# Deploy to AWS\n## `CREDENTIALS_CALLERS`: who may call `POST /credentials`\n## Notes\n## Notes\n"
    )
    assert heading_anchors(markdown) == {
        "deploy-to-aws",
        "credentials_callers-who-may-call-post-credentials",
        "notes",
        "notes-1",
    }


def test_each_kind_of_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Run it\n", encoding="utf-8")
    (tmp_path / "code.py").write_text("", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Top\n\n"
        "[ok](docs/guide.md#run-it) [ok](code.py) [ok](docs/) [ok](#top) [ok](https://example.com/x.md)\n"
        "[gone](docs/missing.md) [anchor](docs/guide.md#deploy) [here](#nowhere) [out](../elsewhere.md)\n",
        encoding="utf-8",
    )
    assert broken_links(readme, tmp_path) == [
        "docs/missing.md: no such file or folder",
        "docs/guide.md#deploy: no heading with the anchor #deploy in docs/guide.md",
        "#nowhere: no heading with the anchor #nowhere in README.md",
        "../elsewhere.md: outside the repository",
    ]


# `test_x.py::test_name` or `folder/test_x.py::test_name`, as the documents cite a test.
CITED_TEST = re.compile(r"\b((?:[\w-]+/)*test_\w+\.py)::(test_\w+)")


def cited_tests_that_do_not_exist(markdown: str) -> list[str]:
    """Each `file::test` the text cites whose file (found by name under tests/) has no such test."""
    missing = []
    for path, test in CITED_TEST.findall(markdown):
        candidates = [
            found for found in (ROOT / "tests").rglob(Path(path).name) if found.as_posix().endswith(path)
        ]
        if not any(
            re.search(rf"^\s*(async )?def {test}\b", found.read_text(encoding="utf-8"), re.M)
            for found in candidates
        ):
            missing.append(f"{path}::{test}")
    return missing


@pytest.mark.parametrize("name", tracked_markdown_files())
def test_every_cited_test_exists(name: str) -> None:
    """A test that is renamed or moved must not leave a document naming a defence's proof that is gone."""
    missing = cited_tests_that_do_not_exist((ROOT / name).read_text(encoding="utf-8"))
    assert not missing, f"{name} cites tests that do not exist: {missing}"


def test_a_cited_test_that_is_gone_is_reported() -> None:
    text = (
        "See `unit/test_markdown_links.py::test_every_cited_test_exists`"
        " and `unit/test_markdown_links.py::test_nope`."
    )
    assert cited_tests_that_do_not_exist(text) == ["unit/test_markdown_links.py::test_nope"]
