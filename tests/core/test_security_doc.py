"""docs/security.md names the tests that show each requirement is met: every test it
names exists, and every row of the ASVS checklist names one (or says why none applies)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"

# `tests/x.py::name`, `tests/x.py` or, after one of these in the same line, `::name`
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def references() -> list[tuple[int, str, str | None]]:
    """(line number, file, function or None) for each test the page names."""
    found = []
    for number, line in enumerate(DOC.read_text().splitlines(), 1):
        current = None
        for match in REFERENCE.finditer(line):
            file, name = match.groups()
            if file is None and name is None:
                continue
            if file is not None:
                current = file
            assert current is not None, f"line {number}: `::{name}` names no file before it"
            found.append((number, current, name))
    return found


def functions(file: str) -> set[str]:
    tree = ast.parse((ROOT / file).read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_named_by_the_security_page_exists():
    found = references()
    assert len(found) > 60
    missing = []
    for number, file, name in found:
        if not (ROOT / file).is_file():
            missing.append(f"line {number}: {file}")
        elif name is not None and name not in functions(file):
            missing.append(f"line {number}: {file}::{name}")
    assert not missing, "docs/security.md names tests that do not exist:\n" + "\n".join(missing)


def test_every_checklist_row_names_a_test_function_or_why_none_applies():
    text = DOC.read_text()
    checklist = text.split("## ASVS 4.0.3 level 2", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in checklist.splitlines()
            if line.startswith("| ") and not line.startswith(("| requirement", "| ---"))]
    assert len(rows) > 40
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 3, row
        test = cells[2]
        if test.startswith(("does not apply:", "not met:")):
            continue
        assert re.search(r"::\w+`", test), f"this row names no test function: {row}"
        assert "review" not in test and test != "—", row
