"""An asyncio event loop on a virtual clock, for tests that must not wait for real time.

:class:`VirtualTimeLoop` has no I/O: its "selector" only moves the clock. When nothing is ready
it jumps to the next timer, so ``asyncio.timeout``, ``asyncio.sleep`` and ``call_later`` take no
real time and every run is deterministic. Drive it with :meth:`VirtualTimeLoop.run_until` (run
everything due up to a moment) or :meth:`VirtualTimeLoop.settle` (run everything due now).
Real sockets and threads do not belong here: ``call_soon_threadsafe`` cannot wake it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any


class _Clockwork:
    """The loop's selector: waiting for I/O means moving the clock to the next timer."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        loop = self.loop
        if timeout == 0:
            return []  # callbacks are ready: run them at this moment
        scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
        when = scheduled[0].when() if scheduled else math.inf
        if when <= loop.limit:
            loop.now = max(loop.now, when)
            return []
        if loop.limit == math.inf:
            msg = "the virtual-time loop has nothing to do and nothing scheduled (a deadlock)"
            raise RuntimeError(msg)
        loop.now = max(loop.now, loop.limit)
        loop.stop()  # nothing more is due before the limit
        return []

    def close(self) -> None:
        """Nothing to release."""


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An event loop whose clock moves only when every task waits (no I/O)."""

    def __init__(self) -> None:
        """Start at virtual time 0."""
        super().__init__()
        self.now = 0.0
        self.limit = math.inf
        self._selector = _Clockwork(self)

    def time(self) -> float:
        """The virtual clock."""
        return self.now

    def run_until(self, moment: float) -> None:
        """Run every callback and timer due up to ``moment``; the clock then shows ``moment``."""
        self.limit = max(moment, self.now)
        try:
            self.run_forever()
        finally:
            self.limit = math.inf

    def settle(self) -> None:
        """Run everything due now, without moving the clock."""
        self.run_until(self.now)

    def _process_events(self, event_list: list[Any]) -> None:
        """No I/O events exist."""

    def _write_to_self(self) -> None:
        """Nothing to wake: the loop runs in the caller's thread only."""
