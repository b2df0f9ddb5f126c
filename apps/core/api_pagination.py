"""The API's pagination (its own module: DRF's settings import it while rest_framework.generics loads,
so it may import nothing that imports generics)."""

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_ID = 2**63 - 1  # the largest primary key (a signed 64-bit integer); beyond it a query overflows


class IdCursor(CursorPagination):
    """Oldest first by id. The cursor is an opaque token naming the last id seen: every page costs one
    indexed range read, however deep, and a row inserted meanwhile is neither skipped nor repeated."""

    ordering = "id"
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {"page_size": [f"A whole number from 1 to {self.max_page_size}; got {raw[:40]!r}."]}
            )
        return size

    def decode_cursor(self, request):
        """A cursor that decodes but does not hold an id (hand-made or garbled) is refused like one that does
        not decode; DRF would hand the text to the id lookup, which fails with a 500."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = 0 <= int(cursor.position) <= MAX_ID
            except ValueError:
                valid = False
            if not valid:
                raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
                param["description"] = f"Rows per page, 1 to {self.max_page_size} (default {self.page_size})."
        return params


class NewestCursor(IdCursor):
    """Newest first by id (jobs, calls, exports: the recent ones matter most)."""

    ordering = "-id"
