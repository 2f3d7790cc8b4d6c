"""The shape a newcomer relies on: a thin handler, an installed package, and tools that need no test code."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "token_url" / "token_url"
TOOLS = ("functions", "importer", "devtools", "bench", "testkit", "emulator")
HANDLER_MAX_LINES = 150


def python_files(*folders: str) -> list[pathlib.Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_handler_holds_only_routes_and_stays_short() -> None:
    """Wiring, guard, responses and decisions live in their own modules; the handler stays readable."""
    lines = len((PACKAGE / "app.py").read_text(encoding="utf-8").splitlines())
    assert lines < HANDLER_MAX_LINES


@pytest.mark.parametrize("path", python_files(*TOOLS), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_code_edits_the_import_path(path: pathlib.Path) -> None:
    """The function is an installed package: an edited sys.path would hide a packaging mistake."""
    assert "sys.path" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    python_files("bench", "devtools", "testkit", "importer"),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_tools_import_nothing_from_the_tests(path: pathlib.Path) -> None:
    """The benchmark, the local stack and the test kit share code through testkit, never through tests."""
    assert not {name for name in imported_modules(path) if name == "tests" or name.startswith("tests.")}


@pytest.mark.parametrize("path", python_files("functions"), ids=lambda path: str(path.relative_to(ROOT)))
def test_the_function_imports_itself_absolutely_and_nothing_of_the_tools(path: pathlib.Path) -> None:
    """Only the package goes to Lambda: an import of the emulator, the tools or the tests would fail there."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative
    tools = {"tests", "testkit", "devtools", "emulator", "bench", "importer"}
    assert not {name for name in imported_modules(path) if name.split(".")[0] in tools}
