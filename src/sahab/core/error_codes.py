"""The catalogue of error codes: what each means, which HTTP status it comes with.

``docs/errors.md`` is generated from it (``sahab errors > docs/errors.md``) and the pages
``/problems/`` and ``/problems/<code>`` serve it, so that the ``type`` of every problem the
API answers leads to the explanation of its code. The HTTP status of a code is read from
the sources: the class of every ``raise <Class>(<Enumeration>.<MEMBER>, …)``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from django.http import JsonResponse
from django.utils import translation

from sahab.core import errors
from sahab.core.problems import problem_response, problem_type

PACKAGE = Path(__file__).resolve().parents[1]
# Helpers that raise a given class with the code they are passed (their second argument).
RAISING_HELPERS = {"_require": "PermissionDenied", "_require_active": "Conflict",
                   "_contract_move": "Conflict"}


def coded_calls(tree: ast.AST):
    """``(class name, enumeration, member, node)`` of every ``Class(Enum.MEMBER, …)``."""
    names = {cls.__name__ for cls in errors.ERROR_CLASSES} | set(RAISING_HELPERS)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in names:
            continue
        for arg in node.args:
            choices = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
            coded = [c for c in choices if isinstance(c, ast.Attribute)
                     and isinstance(c.value, ast.Name) and c.value.id.endswith("Error")]
            for choice in coded:
                yield RAISING_HELPERS.get(name, name), choice.value.id, choice.attr, node
            if coded:
                break


@functools.cache
def statuses() -> dict[str, list[int]]:
    """The HTTP statuses each code is raised with, read from the package's sources."""
    by_name = {cls.__name__: cls.status for cls in errors.ERROR_CLASSES}
    enums = {cls.__name__: cls for cls in errors.enumerations()}
    found: dict[str, set[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for cls_name, enum_name, member, _node in coded_calls(ast.parse(path.read_text())):
            if enum_name in enums and member in enums[enum_name].__members__:
                code = enums[enum_name][member].code
                found.setdefault(code, set()).add(by_name[cls_name])
    return {code: sorted(s) for code, s in found.items()}


def describe(member: errors.ErrorCode) -> dict:
    return {"code": member.code, "type": problem_type(member.code), "pillar": member.pillar(),
            "status": statuses().get(member.code, []), "message": str(member.template)}


def describe_generic(code: str, cls: type[errors.DomainError]) -> dict:
    return {"code": code, "type": problem_type(code), "pillar": "", "status": [cls.status],
            "message": "", "title": cls.title}


def markdown() -> str:
    """``docs/errors.md``: one table per pillar, messages in English."""
    with translation.override("en"):
        lines = [
            "# Error codes", "",
            "Every refusal of sahab's rules has a code. The API's problem documents carry it as",
            "`code`, and their `type` is `<public URL>/problems/<code>`, where this list is",
            "served as JSON. `detail` is the message below, in the language of the request",
            "(French, Arabic or English), with the `%(…)s` parameters filled in. This page is",
            "generated from the code (`sahab errors > docs/errors.md`); a test fails when it",
            "is out of date.", "",
            "Messages not coded yet come with the generic code of their class:", "",
            "| code | HTTP status | title |", "| --- | --- | --- |"]
        for code, cls in errors.generic_codes().items():
            lines.append(f"| `{code}` | {cls.status} | {cls.title} |")
        lines.append("")
        for enumeration in errors.enumerations():
            lines += [f"## {enumeration.pillar().capitalize()}", "",
                      " ".join((enumeration.__doc__ or "").split()), "",
                      "| code | HTTP status | message |", "| --- | --- | --- |"]
            for member in sorted(enumeration, key=lambda m: m.code):
                status = ", ".join(str(s) for s in statuses().get(member.code, [])) or "—"
                message = str(member.template).replace("|", "\\|").replace("\n", " ")
                lines.append(f"| `{member.code}` | {status} | {message} |")
            lines.append("")
    return "\n".join(lines)


def index_view(request):
    """``/problems/``: every code, its statuses and message in the request's language."""
    generic = [describe_generic(c, cls) for c, cls in errors.generic_codes().items()]
    coded = [describe(m) for m in errors.every_code().values()]
    return JsonResponse({"codes": generic + coded}, json_dumps_params={"ensure_ascii": False})


def code_view(request, code: str):
    """``/problems/<code>``: what the ``type`` of a problem designates."""
    if member := errors.every_code().get(code):
        return JsonResponse(describe(member), json_dumps_params={"ensure_ascii": False})
    if cls := errors.generic_codes().get(code):
        return JsonResponse(describe_generic(code, cls), json_dumps_params={"ensure_ascii": False})
    return problem_response(404, "Not found", f"No error code {code}.")
