"""Query parameters of the list and item routes (CONTRACT.md §1.1, D10, D15)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from convostore import errors
from convostore.api.request import Request
from convostore.items import include
from convostore.store.base import PageQuery

LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 100, 20
ORDERS = ("asc", "desc")
_INTEGER = re.compile(
    r"-?[0-9]{1,18}"
)  # ASCII digits only: int() also takes spaces and non-ASCII digits


@dataclass(frozen=True, slots=True)
class ListQuery(PageQuery):
    include: int


def include_mask(request: Request) -> int:
    """``include=a&include=b`` and ``include[]=a`` both count (D10)."""
    if not request.scope.get("query_string"):
        return 0
    return include.parse(request.query_values("include", "include[]"))


# Accepted on every route and ignored (D12).
ALWAYS_KNOWN = frozenset({"api-version"})


def refuse_unknown(
    request: Request, known: frozenset[str], pattern: re.Pattern[str] | None = None
) -> None:
    """D24: an extension route answers a query parameter it does not know with a 400 that
    names it (Azure's `agent_name`, a misspelt filter), never a silently wrong page. The
    8 OpenAI operations do not call this: they ignore what they do not know, as OpenAI."""
    unknown = [
        name
        for name in dict.fromkeys(key for key, _ in request.query)
        if name not in known
        and name not in ALWAYS_KNOWN
        and (pattern is None or not pattern.fullmatch(name))
    ]
    if not unknown:
        return
    if len(unknown) == 1:
        raise errors.unknown_parameter(unknown[0])
    names = ", ".join(f"'{name}'" for name in unknown)
    raise errors.InvalidRequest(
        f"Unknown parameters: {names}.", param=unknown[0], code="unknown_parameter"
    )


def integer(name: str, raw: str, *, minimum: int | None, maximum: int | None) -> int:
    """A query parameter that must be a whole number within bounds, in OpenAI's words."""
    if not _INTEGER.fullmatch(raw):
        raise errors.invalid_type(name, ["integer"], raw)
    number = int(raw)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise errors.integer_out_of_range(name, number, minimum=minimum, maximum=maximum)
    return number


def list_query(request: Request) -> ListQuery:
    limit = LIMIT_DEFAULT
    raw_limit = request.query_value("limit")
    if raw_limit is not None:
        limit = integer("limit", raw_limit, minimum=LIMIT_MIN, maximum=LIMIT_MAX)
    order = request.query_value("order")
    if order is not None and order not in ORDERS:
        raise errors.invalid_value("order", order, ORDERS)
    after = request.query_value("after") or None
    if after is not None and "\x00" in after:  # cannot name a stored item (see routing)
        raise errors.after_not_found(after)
    return ListQuery(after, limit, order != "asc", include_mask(request))
