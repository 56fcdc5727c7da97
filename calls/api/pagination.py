"""Cursor pagination for the call list: stable under inserts, strict about its inputs.

DRF's CursorPagination silently falls back to the default for a bad `page_size`, answers 404 for a bad cursor,
and passes a forged cursor's position straight into the query (a 500 for a non-date); here all three are 400s.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from core.errors import ApiError

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

# Public ordering -> database ordering. The first field is the cursor position; id breaks ties so the order is
# total (pages never repeat or skip a call). Durations of live calls are null; `duration_sort` maps them to -1.
ORDERINGS = {
    "started_at": ("started_at", "id"),
    "-started_at": ("-started_at", "-id"),
    "duration": ("duration_sort", "id"),
    "-duration": ("-duration_sort", "-id"),
}
DEFAULT_ORDERING = "-started_at"


class PagedRequest(Request):
    """The type of a call-list request once the view has validated `page_size` with the other filters."""

    validated_page_size: int | None


def _valid_position(field: str, position: str) -> bool:
    if field == "started_at":
        try:
            parsed = parse_datetime(position)
        except ValueError:
            return False
        return parsed is not None and parsed.tzinfo is not None
    try:
        return -1 <= int(position) < 2**31
    except ValueError:
        return False


class CallCursorPagination(CursorPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ORDERINGS[DEFAULT_ORDERING]

    def get_ordering(self, request: Request, queryset: QuerySet, view: APIView) -> tuple[str, ...]:
        # The view validated `ordering` (400 for unknown values) together with the other filters.
        return ORDERINGS[getattr(view, "ordering_param", None) or DEFAULT_ORDERING]

    def get_page_size(self, request: Request) -> int:
        return getattr(request, "validated_page_size", None) or self.page_size

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except (NotFound, UnicodeError):
            pass
        else:
            if cursor is None or cursor.position is None:
                return cursor
            # The position comes from the query string, a str (the stubs say int): str() only tells mypy so.
            if _valid_position(self.ordering[0].lstrip("-"), str(cursor.position)):
                return cursor
        raise ApiError(
            400,
            "validation_error",
            "The cursor is not valid for this ordering; use the next/previous links as given.",
            fields={"cursor": ["Invalid cursor."]},
        )

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        # page_size is documented (and validated) by the filter set; only the cursor belongs to pagination.
        parameters = [p for p in super().get_schema_operation_parameters(view) if p["name"] == "cursor"]
        for parameter in parameters:
            parameter["allowEmptyValue"] = True  # a blank cursor is the first page, as the server answers
        return parameters
