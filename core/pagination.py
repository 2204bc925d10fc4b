"""Keyset pages: lists whose cost does not grow with how far a client has paged, or how long the list is.

A list ordered by one or more columns ending with its primary key (`-id`, or `-created_at, -id`) is paged by
a cursor: an opaque token holding the ordering values of the last row of the page, so the next page is one
index range scan (`WHERE (created_at, id) < (t, i) ORDER BY ... LIMIT n`) whatever its depth, and no page ever
runs `COUNT(*)` over the whole list or skips rows with `OFFSET`.

The count that pages carry is exact up to COUNT_EXACT_LIMIT rows (a count over at most that many rows); past
it, the planner's estimate, labelled `count_exact: false`.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from core.errors import ValidationFailed

CURSOR_PARAM = "cursor"
COUNT_EXACT_LIMIT = 10_000
FORWARD, BACKWARD = "n", "p"
INVALID_CURSOR = "cursor is not one this list gave out (take it from `next` or `previous`); got {value!r}."
MAX_CURSOR_LENGTH = 512


class InvalidCursor(ValidationFailed):
    """A `cursor` query parameter that no page of this list produced."""

    code = "invalid_query"


@dataclass(frozen=True)
class Keyset:
    """The ordering of a list: its fields (last one unique) and whether it runs newest first."""

    fields: tuple[str, ...]
    descending: bool

    @classmethod
    def of(cls, queryset: QuerySet) -> "Keyset | None":
        """Return the keyset of `queryset`'s ordering, or None when it cannot be paged by cursor."""
        ordering = tuple(str(field) for field in queryset.query.order_by)
        if not ordering or not all(isinstance(field, str) for field in queryset.query.order_by):
            return None
        directions = {field.startswith("-") for field in ordering}
        fields = tuple(field.lstrip("-") for field in ordering)
        if len(directions) != 1 or fields[-1] not in ("id", "pk") or any("__" in field for field in fields):
            return None
        return cls(fields=fields, descending=directions.pop())

    def values_of(self, row) -> list:
        """Return the ordering values of `row` (a model instance) as JSON-ready values."""
        values = []
        for field in self.fields:
            value = getattr(row, "pk" if field in ("id", "pk") else field)
            values.append(value.isoformat() if isinstance(value, datetime) else value)
        return values

    def after(self, queryset: QuerySet, values: list, *, backward: bool) -> QuerySet:
        """Return `queryset` narrowed to the rows that follow `values` (precede, going backward).

        Written as `f1 <= v1 AND (f1 < v1 OR (f2 <= v2 AND (... OR fn < vn)))` (newest first) rather than an
        OR of equalities, so its first term is a range of an index on the ordering and the page is read from
        that index whatever its depth.
        """
        older = self.descending != backward
        strict, loose = ("lt", "lte") if older else ("gt", "gte")
        condition = Q(**{f"{self.fields[-1]}__{strict}": values[-1]})
        for field, value in zip(reversed(self.fields[:-1]), reversed(values[:-1]), strict=True):
            condition = Q(**{f"{field}__{loose}": value}) & (Q(**{f"{field}__{strict}": value}) | condition)
        rows = queryset.filter(condition)
        if backward:
            rows = rows.reverse()
        return rows


def encode_cursor(direction: str, values: list) -> str:
    """Return the opaque cursor for a page starting after `values` in `direction`."""
    raw = json.dumps([direction, values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, keyset: Keyset) -> tuple[str, list]:
    """Return (direction, values) of `text`; raise InvalidCursor unless this keyset could have made it."""
    invalid = InvalidCursor(INVALID_CURSOR.format(value=text[:80]))
    invalid.details = [{"field": CURSOR_PARAM, "code": "invalid_query", "message": invalid.message}]
    if len(text) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        direction, values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise invalid from None
    if direction not in (FORWARD, BACKWARD) or not isinstance(values, list):
        raise invalid
    if len(values) != len(keyset.fields):
        raise invalid
    checked = []
    for field, value in zip(keyset.fields, values, strict=True):
        if field in ("id", "pk"):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise invalid
        elif isinstance(value, str) and (moment := parse_datetime(value)) is not None:
            value = moment
        elif not isinstance(value, int | str) or isinstance(value, bool):
            raise invalid
        checked.append(value)
    return direction, checked


@dataclass
class CursorPage:
    """One page of a keyset-ordered list, and the cursors of its neighbours (None: no such page)."""

    rows: list
    count: int
    count_exact: bool
    next_cursor: str | None
    previous_cursor: str | None
    previous_is_first: bool  # the previous page is the list's first one (link to it without a cursor)

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None or self.previous_is_first


def cursor_page(
    queryset: QuerySet, keyset: Keyset, cursor: str | None, limit: int, offset: int = 0
) -> CursorPage:
    """Return the page of `queryset` after `cursor` (or from `offset`): limit+1 rows read, never more."""
    count, exact = bounded_count(queryset)
    direction, after = decode_cursor(cursor, keyset) if cursor else (FORWARD, None)
    rows = queryset
    if after is not None:
        rows = keyset.after(queryset, after, backward=direction == BACKWARD)
    elif offset:
        rows = queryset[offset:]
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    if direction == BACKWARD:
        page.reverse()
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, after is not None or offset > 0
    next_cursor = encode_cursor(FORWARD, keyset.values_of(page[-1])) if has_next and page else None
    previous_cursor = encode_cursor(BACKWARD, keyset.values_of(page[0])) if has_previous and page else None
    return CursorPage(
        rows=page,
        count=count,
        count_exact=exact,
        next_cursor=next_cursor,
        previous_cursor=previous_cursor,
        previous_is_first=has_previous and not page,
    )


def bounded_count(queryset: QuerySet) -> tuple[int, bool]:
    """Return (count, exact): exact up to COUNT_EXACT_LIMIT rows, else the planner's estimate."""
    counted = queryset.order_by()[: COUNT_EXACT_LIMIT + 1].count()
    if counted <= COUNT_EXACT_LIMIT:
        return counted, True
    plan = json.loads(queryset.order_by().explain(format="json"))
    return max(int(plan[0]["Plan"]["Plan Rows"]), counted), False


def console_cursor_page(queryset: QuerySet, request, per_page: int) -> tuple[CursorPage, str]:
    """Return the console's page of `queryset` at the request's cursor, and the query without it.

    Raises InvalidCursor for a cursor no page produced, and ValueError when `queryset` is not ordered by a
    keyset (a programming error: console lists are ordered newest first by id).
    """
    keyset = Keyset.of(queryset)
    if keyset is None:
        ordering = queryset.query.order_by
        raise ValueError(f"{queryset.model.__name__} list is not ordered by a keyset: {ordering}")
    page = cursor_page(queryset, keyset, request.GET.get(CURSOR_PARAM) or None, per_page)
    query = request.GET.copy()
    for name in (CURSOR_PARAM, "page"):
        query.pop(name, None)
    return page, query.urlencode()
