"""Paging for every list of the JSON API, and for the web's lists that a country's data
makes long."""

from functools import cached_property

from django.conf import settings
from django.core.paginator import Paginator
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

MAX_OFFSET = 2**31 - 1  # far beyond any list; keeps the SQL OFFSET within a bigint


class Paging(LimitOffsetPagination):
    """``limit``/``offset`` paging with bounds that every database accepts."""

    class Input(Schema):
        limit: int = Field(settings.NINJA_PAGINATION_PER_PAGE, ge=1,
                           le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)


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
