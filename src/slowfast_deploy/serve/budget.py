"""Memory held by requests, bounded: a request waits for its share before it takes it.

Two budgets keep a busy server's memory flat however many requests arrive (the admission
limit, ``--max-requests`` requests, bounds how many wait):

- tensor bodies: bytes read into memory at once (a request reserves its ``Content-Length``
  before a byte is read);
- decoded videos: clips decoded and not yet scored (a 30-view video holds 30 clips of
  ``32 x 256 x 256 x 3`` bytes until the model has taken them), so decoders never run far
  ahead of the model.
"""

from __future__ import annotations

import asyncio


class Budget:
    """At most ``total`` units held at once; a request for more than ``total`` waits for all
    of it (so it runs alone rather than never)."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"total must be >= 1, got {total}")
        self.total = total
        self.free = total
        self._cond = asyncio.Condition()

    def share(self, units: int) -> int:
        return max(1, min(units, self.total))

    async def acquire(self, units: int) -> int:
        """Wait until ``units`` (clamped to ``1..total``) are free and take them."""
        units = self.share(units)
        async with self._cond:
            await self._cond.wait_for(lambda: self.free >= units)
            self.free -= units
        return units

    async def release(self, units: int) -> None:
        async with self._cond:
            self.free += units
            self._cond.notify_all()
