"""Thin web views: what a person posts is read by a form, never picked apart in a view.

The rule, checked on the syntax of every ``src/sahab/*/views.py`` and ``*_views.py``:
``request.POST`` (and ``request.FILES``) appears only as an argument of a call, on its own
or inside ``or`` / a conditional expression — ``Form(request.POST)``,
``Form(request.POST or None)``, ``helper(request, admin, request.POST)``. Anything else is
a view parsing input itself and is refused: ``request.POST.get(...)``,
``request.POST[...]``, ``request.POST.getlist(...)``, ``post = request.POST``, iterating
over it or testing ``... in request.POST``. The form then says what is wrong (a message
to the person, never a 500) and the view only calls the service."""

import ast
from pathlib import Path

import pytest

import sahab

POSTED = {"POST", "FILES"}
SRC = Path(sahab.__file__).parent
VIEWS = sorted({*SRC.glob("*/views.py"), *SRC.glob("*/*_views.py")})


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _passed_whole(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether ``node`` is an argument of a call, possibly through ``or`` / ``x if c else y``
    (the value itself, not its test)."""
    child, parent = node, parents.get(node)
    while isinstance(parent, ast.BoolOp | ast.IfExp):
        if isinstance(parent, ast.IfExp) and child is parent.test:
            return False
        child, parent = parent, parents.get(parent)
    if isinstance(parent, ast.keyword):
        child, parent = parent, parents.get(parent)
    return isinstance(parent, ast.Call) and child is not parent.func


def offences(source: str, filename: str = "<view>") -> list[str]:
    """Each place where ``source`` reads posted input other than by passing it whole."""
    tree = ast.parse(source, filename)
    parents = _parents(tree)
    return [f"{filename}:{node.lineno}: {ast.unparse(parents.get(node, node))}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in POSTED
            and isinstance(node.value, ast.Name) and node.value.id == "request"
            and not _passed_whole(node, parents)]


def test_views_are_found():
    assert len(VIEWS) >= 10 and SRC / "procurement" / "views.py" in VIEWS


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: str(p.relative_to(SRC)))
def test_no_view_picks_posted_input_apart(path):
    assert offences(path.read_text(), str(path.relative_to(SRC))) == []


@pytest.mark.parametrize("line", [
    "request.POST.get('x')",
    "request.POST['x']",
    "request.POST.getlist('lot')",
    "post = request.POST",
    "'x' in request.POST",
    "[n for n in request.POST]",
    "request.FILES.getlist('documents')",
    "Form(request.POST.copy())",
    "Form(request.POST if request.POST else None)",
])
def test_the_rule_refuses_a_view_that_parses_input_itself(line):
    assert offences(line)


@pytest.mark.parametrize("line", [
    "Form(request.POST)",
    "Form(request.POST, request.FILES, tender=item)",
    "Form(request.POST or None, request.FILES or None)",
    "Form(request.POST if request.method == 'POST' else None)",
    "helper(request, admin, request.POST)",
    "Form(data=request.POST)",
    "request.method == 'POST'",
])
def test_the_rule_lets_input_be_passed_whole_to_a_form(line):
    assert offences(line) == []
