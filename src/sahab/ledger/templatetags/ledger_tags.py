"""Template filters for pages that show ledger entries: ``{% load ledger_tags %}``."""

from django import template

from sahab.ledger import vocabulary

register = template.Library()


@register.filter
def event_title(type_string) -> str:
    """``{{ entry.type|event_title }}``: the entry type's short title in the page's language
    (``procurement.tender.published`` and the step ``tender.published`` alike read "Tender
    published"); a type the vocabularies do not know is shown as it is. Pages keep the type
    itself beside it (a ``title`` attribute or small code) for auditors."""
    return vocabulary.event_title(type_string)
