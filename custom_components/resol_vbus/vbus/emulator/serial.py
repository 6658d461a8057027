"""A serial port: a pseudo-terminal behind a stable link, streaming one channel without handshake.

The slave side stands in for a VBus/USB adapter (``/dev/serial/by-id/…``); the master side is one
client of the channel in data mode (:class:`~.connection.Connection`, faults included): the
channel's traffic goes out, frames written to the port reach the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tty
from typing import TYPE_CHECKING, Final

from .connection import Connection

if TYPE_CHECKING:
    from pathlib import Path

    from .server import Emulator

# A port nobody reads loses data, as an adapter does, instead of building a backlog: beyond this,
# the terminal's own buffer holds what is pending, and a client discards that when it opens.
SERIAL_HIGH_WATER: Final = 4096


class _WriteSide(asyncio.Protocol):
    """The protocol of the writing transport: it only tells when the transport is gone."""

    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - always None
        """The transport closed (its file is closed right after this returns)."""
        if not self.lost.done():
            self.lost.set_result(None)


def _abort(transport: asyncio.WriteTransport) -> None:
    """Close ``transport`` now, dropping unsent data; once only.

    A pipe transport's ``abort()`` would report the loss again if it is already reported or
    scheduled, which is the case when it is closing with nothing left to send.
    """
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()


def _terminal(link: Path) -> tuple[int, io.FileIO, io.FileIO]:
    """A pseudo-terminal in raw mode, ``link`` pointing at its slave.

    Returns the slave and the master twice, for reading and for writing (each transport closes
    its own file).
    """
    master, slave = os.openpty()
    try:
        tty.setraw(slave)  # no echo, no line editing: the bytes as they are
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(slave))
        writing = os.dup(master)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return slave, io.FileIO(master, "r"), io.FileIO(writing, "w")


class SerialPort:
    """A pseudo-terminal serving one channel; the slave is reachable through ``link``.

    Create it with :meth:`open`; :meth:`close` unplugs it. A connection fault that closes a
    client connection (``drop_after_bytes``, …) unplugs the port the same way.
    """

    def __init__(
        self,
        emulator: Emulator,
        link: Path,
        channel: int,
        *,
        slave: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reading: asyncio.ReadTransport,
        write_side: _WriteSide,
    ) -> None:
        """Use :meth:`open`."""
        self.link = link
        self.device = os.ttyname(slave)
        # Closing the connection (a fault, a stop) unplugs the port: a port is never half open.
        self.connection = Connection(emulator, reader, writer, on_close=self._unplug)
        self.connection.channel_number = channel
        self.connection.high_water = SERIAL_HIGH_WATER
        self._slave: int | None = slave
        self._reading = reading
        self._write_side = write_side
        # Started eagerly: the port is on the channel (and its first data out) on return.
        self._task = asyncio.Task(
            self.connection.serve(handshake=False),
            loop=asyncio.get_running_loop(),
            name=f"vbus emulator serial port {link}",
            eager_start=True,
        )

    @classmethod
    async def open(cls, emulator: Emulator, link: Path, channel: int) -> SerialPort:
        """A new pseudo-terminal in raw mode, ``link`` pointing at it, serving ``channel``."""
        loop = asyncio.get_running_loop()
        slave, reading_file, writing_file = _terminal(link)
        with contextlib.ExitStack() as undo:
            undo.callback(os.close, slave)
            undo.callback(reading_file.close)
            undo.callback(writing_file.close)
            reader = asyncio.StreamReader()
            reading, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), reading_file
            )
            undo.callback(reading.close)
            writing, write_side = await loop.connect_write_pipe(_WriteSide, writing_file)
            undo.pop_all()
        writer = asyncio.StreamWriter(writing, write_side, reader, loop)
        return cls(
            emulator,
            link,
            channel,
            slave=slave,
            reader=reader,
            writer=writer,
            reading=reading,
            write_side=write_side,
        )

    @property
    def is_open(self) -> bool:
        """Whether the port is still there."""
        return self._slave is not None

    def inject(self, data: bytes) -> None:
        """Write ``data`` to the port as it is (no faults apply), e.g. line noise."""
        if self.is_open:
            self.connection.writer.write(data)

    def _unplug(self) -> None:
        """Close both transports (and so the master), the slave, and remove the link."""
        _abort(self.connection.writer.transport)
        self._reading.close()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        with contextlib.suppress(OSError):
            if str(self.link.readlink()) == self.device:  # not a link made since
                self.link.unlink()

    async def close(self) -> None:
        """Unplug the port: a client's pending read fails; returns when every fd is closed."""
        self.connection.close()  # a frame cut in half first, when the faults ask for it
        self._unplug()  # also when the connection was closed already
        await self._task
        await self._write_side.lost
