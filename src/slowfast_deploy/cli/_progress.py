"""Progress bars on stderr, only when it is a terminal and the user did not ask for quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int, desc: str, quiet: bool, unit: str = "video") -> Any:
    """``tqdm`` over ``items`` on a TTY stderr; the plain iterable otherwise."""
    if quiet or not sys.stderr.isatty():
        return _Plain(items)
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


class _Plain:
    """The subset of tqdm's API the commands use, doing nothing."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass
