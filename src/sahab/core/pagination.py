"""Paging for every list of the JSON API, and for the web's lists that a country's data
makes long."""

from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

MAX_OFFSET = 2**31 - 1  # far beyond any list; keeps the SQL OFFSET within a bigint
# How many matches of a word search are counted and paged, on the web and in the API: at
# a million tenders, counting 5,000 matches of a common word takes about 0.1 s
SEARCH_WINDOW = 5_000


class Paging(LimitOffsetPagination):
    """``limit``/``offset`` paging with bounds that every database accepts."""

    class Input(Schema):
        limit: int = Field(settings.NINJA_PAGINATION_PER_PAGE, ge=1,
                           le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)


class SearchPaging(Paging):
    """The paging of a list that a word search makes broad (a fifth of a country's
    tenders for a common word): with ``q``, the list counts up to :attr:`window` matches
    and pages through them only, as search engines do.

    Counting every match of such a word costs more than finding the page asked for (0.65
    s for "informatique" at a million tenders); past the window, ``count`` is the window and
    ``count_capped`` says so, and a page beyond it is refused by ``past_window(request, window)``,
    which raises the API's problem pointing to the bulk files. Without ``q`` the count is exact.
    """

    window = SEARCH_WINDOW

    class Output(Schema):
        items: list[Any]
        count: int = Field(description=f"How many match; with q, at most the window "
                                       f"({SEARCH_WINDOW:,}), see count_capped")
        count_capped: bool = Field(False, description="True when more match a search (q) "
                                                      "than the window counts and pages")

    def __init__(self, *, past_window=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.past_window = past_window

    def paginate_queryset(self, queryset, pagination, request, **params) -> dict:
        filters = params.get("filters")
        if not getattr(filters, "q", ""):
            return super().paginate_queryset(queryset, pagination, request, **params)
        offset, limit = pagination.offset, min(pagination.limit, self.max_limit)
        if offset >= self.window and self.past_window is not None:
            self.past_window(request, self.window)
        count = queryset[: self.window + 1].count()
        end = min(offset + limit, self.window)
        return {"items": queryset[offset:end] if offset < end else queryset.none(),
                "count": min(count, self.window), "count_capped": count > self.window}


class CappedPaginator(Paginator):
    """A web page list that counts its matches up to ``cap`` only.

    Counting every match of a broad search over a million tenders costs more than
    finding the page shown, and nobody pages through thousands of rows on a screen: past
    the cap the page says "more than" and offers the narrower search or the bulk files.
    """

    def __init__(self, object_list, per_page: int, cap: int) -> None:
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def count(self) -> int:
        """The number of matches, or ``cap + 1`` when there are more than ``cap``."""
        return self.object_list[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    @cached_property
    def num_pages(self) -> int:
        if self.capped:
            return self.cap // self.per_page
        return super().num_pages
