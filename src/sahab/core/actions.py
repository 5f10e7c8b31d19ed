"""One way for the web's form posts to run a service: the form checks the input, the
service decides, and either outcome reaches the person as a message (never a 500)."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sahab.core.errors import DomainError


def form_error_text(form: forms.Form) -> str:
    """A form's errors as one sentence per field, labelled."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        parts.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
    return " ".join(parts)


def run_form_action(request: HttpRequest, form: forms.Form,
                    perform: Callable[[dict], str | None]) -> bool:
    """Validate ``form`` and call ``perform`` with its cleaned data; tell the person what
    happened (the service's own message, or "Saved."). True when it was done."""
    if not form.is_valid():
        messages.error(request, form_error_text(form))
        return False
    try:
        note = perform(form.cleaned_data)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return False
    messages.success(request, note or _("Saved."))
    return True
