"""Paging for every list of the JSON API."""

from django.conf import settings
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

MAX_OFFSET = 2**31 - 1  # far beyond any list; keeps the SQL OFFSET within a bigint


class Paging(LimitOffsetPagination):
    """``limit``/``offset`` paging with bounds that every database accepts."""

    class Input(Schema):
        limit: int = Field(settings.NINJA_PAGINATION_PER_PAGE, ge=1,
                           le=settings.NINJA_PAGINATION_MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)
