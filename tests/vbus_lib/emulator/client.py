"""A raw VBus-over-TCP client for the emulator tests, and the frames it sends and expects."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiovbus.emulator import (
    MX_CHANGESET,
    ChannelSource,
    ControllerSimulator,
    Emulator,
    StaticSource,
)
from aiovbus.protocol import Datagram
from aiovbus.receiver import StreamReceiver

from .common import MX, OK_DATA, OK_PASS, SELF, TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiovbus.protocol import Frame


def static(*frames: Frame, controller: int | None = MX) -> dict[int, ChannelSource]:
    return {1: StaticSource(*frames, controller=controller)}


async def within[T](awaitable: Awaitable[T]) -> T:
    """``awaitable``, with the test's safety timeout."""
    async with asyncio.timeout(TIMEOUT):
        return await awaitable


def request(command: int, param16: int = 0, param32: int = 0, source: int = SELF) -> Datagram:
    return Datagram(MX, source, command, param16, param32)


def answer(command: int, param16: int = 0, param32: int = 0) -> Datagram:
    return Datagram(SELF, MX, command, param16, param32)


def is_offer(frame: Frame) -> bool:
    return isinstance(frame, Datagram) and frame.command == 0x0500


def is_answer(frame: Frame) -> bool:
    return isinstance(frame, Datagram) and frame.destination == SELF


class Client:
    """A raw VBus-over-TCP client: handshake lines, then frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.receiver = StreamReceiver()
        self.frames: list[Frame] = []
        self.data = bytearray()

    @classmethod
    async def open(cls, emulator: Emulator) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
        return cls(reader, writer)

    async def line(self) -> bytes:
        async with asyncio.timeout(TIMEOUT):
            return await self.reader.readuntil(b"\n")

    async def command(self, text: str) -> bytes:
        self.writer.write(text.encode() + b"\r\n")
        return await self.line()

    async def start(self, *, channel: int | None = None) -> None:
        assert (await self.line()).startswith(b"+HELLO ")
        assert await self.command("PASS vbus") == OK_PASS
        if channel is not None:
            assert await self.command(f"CHANNEL {channel}") == b"+OK: Channel selected\r\n"
        assert await self.command("DATA") == OK_DATA

    async def read(self) -> bytes:
        async with asyncio.timeout(TIMEOUT):
            chunk = await self.reader.read(65536)
        self.data += chunk
        self.frames += self.receiver.feed(chunk)
        return chunk

    async def frame(self, match: Callable[[Frame], bool] | None = None) -> Frame:
        """The next frame (matching ``match``); frames before it are dropped."""
        while True:
            while self.frames:
                frame = self.frames.pop(0)
                if match is None or match(frame):
                    return frame
            if not await self.read():
                raise EOFError

    async def eof(self) -> bytes:
        """Everything until the server closes the connection."""
        start = len(self.data)
        while await self.read():
            pass
        return bytes(self.data[start:])

    def send(self, *frames: Frame) -> None:
        self.writer.write(b"".join(frame.encode() for frame in frames))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def take_bus(client: Client, controller: ControllerSimulator) -> None:
    """Win the bus with the changeset read, as the reference sequence does."""
    if controller.offer_interval is None:
        assert controller.offer_bus()
    await client.frame(is_offer)
    client.send(request(0x0300))
    assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
    assert controller.master == SELF
