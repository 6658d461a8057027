"""Small asyncio helpers shared by the session and the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


async def cancel_and_wait(task: asyncio.Task[object] | asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended.

    The end of ``task`` by its cancellation is expected; a cancellation of the caller while it
    waits is not swallowed with it, it goes on (else a session stopped at that moment would
    carry on reconnecting, and whoever stopped it would wait for ever).
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN (linger 0), as a rebooting device or a firewall does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
