"""Sorted id lists, page bounds and DO's ``links.pages`` for the fake's listings."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200  # DO silently caps per_page at 200

_Row = TypeVar("_Row")


def discard_sorted(ids: list[int], value: int) -> None:
    index = bisect.bisect_left(ids, value)
    if index < len(ids) and ids[index] == value:
        del ids[index]


def contains_sorted(ids: list[int], value: int) -> bool:
    index = bisect.bisect_left(ids, value)
    return index < len(ids) and ids[index] == value


@dataclass(slots=True)
class DropletIndex:
    """Sorted ids of visible droplets, all and per tag: one for the whole fake, one per account.

    Ids are allocated in increasing order, so an insert is almost always an append.
    """

    ids: list[int] = field(default_factory=list)
    by_tag: dict[str, list[int]] = field(default_factory=dict)

    def add(self, droplet_id: int, tags: Iterable[str]) -> None:
        bisect.insort(self.ids, droplet_id)
        for tag in tags:
            bisect.insort(self.by_tag.setdefault(tag, []), droplet_id)

    def discard(self, droplet_id: int, tags: Iterable[str]) -> None:
        discard_sorted(self.ids, droplet_id)
        for tag in tags:
            tagged = self.by_tag.get(tag)
            if tagged is None:
                continue
            discard_sorted(tagged, droplet_id)
            if not tagged:
                del self.by_tag[tag]

    def __contains__(self, droplet_id: int) -> bool:
        return contains_sorted(self.ids, droplet_id)

    def listed(self, tag_name: str | None) -> list[int]:
        """The ids a listing shows: every visible droplet, or those with the tag."""
        return self.by_tag.get(tag_name, []) if tag_name else self.ids


def clamp_page(page: int, per_page: int, max_per_page: int = MAX_PER_PAGE) -> tuple[int, int]:
    """DO's bounds: pages start at 1, ``per_page`` is at least 1 and at most the cap."""
    return max(1, page), min(max(1, per_page), max_per_page)


def listing(
    key: str,
    items: list[dict[str, Any]],
    *,
    url: str,
    page: int,
    per_page: int,
    total: int,
    extra: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """A listing body: ``{key: items, "links": {"pages": …}, "meta": {"total": …}}``."""
    pages = page_links(url, page, per_page, total, extra or {})
    return {key: items, "links": {"pages": pages}, "meta": {"total": total}}


def page_of(
    key: str,
    rows: Sequence[_Row],
    render: Callable[[_Row], dict[str, Any]],
    *,
    url: str,
    page: int,
    per_page: int,
    extra: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """One page of ``rows`` in their order, each rendered; O(page)."""
    page, per_page = clamp_page(page, per_page)
    start = (page - 1) * per_page
    items = [render(row) for row in rows[start : start + per_page]]
    return listing(key, items, url=url, page=page, per_page=per_page, total=len(rows), extra=extra)


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
