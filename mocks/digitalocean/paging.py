"""Sorted id lists and DO's ``links.pages`` for the fake's listings."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from urllib.parse import urlencode


def discard_sorted(ids: list[int], value: int) -> None:
    index = bisect.bisect_left(ids, value)
    if index < len(ids) and ids[index] == value:
        del ids[index]


def page_links(
    url: str, page: int, per_page: int, total: int, extra: Mapping[str, str | None]
) -> dict[str, str]:
    """DO's ``links.pages``: first/prev when not on page 1, next/last when more follow."""
    last = max(1, math.ceil(total / per_page))
    query_tail = {key: value for key, value in extra.items() if value}

    def link(number: int) -> str:
        return f"{url}?{urlencode({'page': number, 'per_page': per_page, **query_tail})}"

    pages: dict[str, str] = {}
    if page > 1:
        pages["first"] = link(1)
        pages["prev"] = link(min(page - 1, last))
    if page < last:
        pages["next"] = link(page + 1)
        pages["last"] = link(last)
    return pages
