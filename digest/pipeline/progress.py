"""Progress hooks: `track(label, total)` starts a task and returns its `advance(n)`.
The CLI passes one that draws progress bars; everything else passes nothing."""

from __future__ import annotations

from collections.abc import Callable

Tracker = Callable[[str, int | None], Callable[[int], None]]


def no_tracking(label: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None
