"""The small asyncio helpers: cancel_and_wait."""

from __future__ import annotations

import asyncio

import pytest

from aiovbus.aio import cancel_and_wait


async def test_a_cancelled_task_is_waited_for_and_its_cancellation_is_swallowed() -> None:
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(waits())
    await started.wait()
    await cancel_and_wait(task)
    assert task.cancelled()
    await cancel_and_wait(None)  # nothing to do


async def test_a_callers_cancellation_while_it_waits_is_not_swallowed() -> None:
    """The bug: a session cancelled while it waited for its watchdog went on reconnecting."""
    started, ending, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_end() -> None:  # needs a moment after its cancellation, as a watchdog may
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            ending.set()
            await release.wait()

    inner = asyncio.create_task(slow_to_end())
    await started.wait()
    carried_on = False

    async def stopper() -> None:
        nonlocal carried_on
        await cancel_and_wait(inner)
        carried_on = True  # must not happen: this task was cancelled meanwhile

    outer = asyncio.create_task(stopper())
    async with asyncio.timeout(10):  # a bound only
        await ending.wait()  # outer cancelled inner and waits for it to end
    outer.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert inner.cancelled()
    assert not carried_on
