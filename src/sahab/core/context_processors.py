from django.conf import settings

from sahab.core import navigation as nav


def navigation(request):
    """Navigation entries and language list for the base layout."""
    return {
        "nav_items": nav.items_for(request.user),
        "sahab_languages": settings.LANGUAGES,
    }
