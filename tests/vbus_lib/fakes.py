"""Test doubles: a scripted VBus device, HTTP and UDP peers, a fake clock, a forbidden port."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import pytest
import serialx

from aiovbus.aio import reset_connection
from aiovbus.discovery import QUERY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

LOOPBACK = "127.0.0.1"


def _pseudo_terminals() -> bool:
    """Whether this system can make a pseudo-terminal."""
    try:
        master, slave = os.openpty()
    except OSError:
        return False
    os.close(master)
    os.close(slave)
    return True


def no_port_path(kind: str, folder: Path) -> str:
    """A path of ``kind`` that is no serial port (files made in ``folder``)."""
    made = {
        "directory": lambda path: path.mkdir(),
        "fifo": os.mkfifo,
        "regular-file": lambda path: path.write_bytes(b"\xaa\x10\x00"),
        "dangling-symlink": lambda path: path.symlink_to(folder / "gone"),
    }
    if kind in made:
        path = folder / kind
        made[kind](path)
        return str(path)
    if kind == "symlink-loop":
        (folder / "a").symlink_to(folder / "b")
        (folder / "b").symlink_to(folder / "a")
        return str(folder / "a")
    if kind == "below-a-file":
        (folder / "file").write_bytes(b"")
        return str(folder / "file" / "ttyUSB0")
    fixed = {
        "dev-null": os.devnull,
        "long-name": str(folder / ("x" * 256)),
        "long-path": "/dev/" + "/".join(["d" * 200] * 25),  # more than PATH_MAX (4096)
        "spaces-and-unicode": str(folder / "VBus Adapter ä ✓"),
        "root": "/",
        "nul-byte": "/dev/ttyUSB0\0",
    }
    return fixed[kind]


#: Marks the tests that need a pseudo-terminal (the emulator's serial port). scripts/test gives
#: itself one where it can (scripts/_venv.sh: venv_with_ptys); without, these tests skip.
needs_pty = pytest.mark.skipif(
    not _pseudo_terminals(), reason="no pseudo-terminals here: /dev/pts is not mounted"
)


@dataclass
class ScriptedDevice:
    """A loopback TCP server that answers handshake commands from a table.

    ``replies`` maps a command word (``PASS``, ``DATA``, …) to the bytes sent back; commands not
    in the table get ``-ERROR: "Error: Unknown command"``. After ``DATA`` the server sends
    ``data`` and keeps the connection open until the client closes it (or, with
    ``close_after_data``, closes it itself). With ``trickle`` set, the device only repeats
    ``greeting`` one byte per ``trickle`` seconds, forever (a reply that never ends).
    """

    replies: dict[str, bytes] = field(
        default_factory=lambda: {"PASS": b"+OK: Password accepted\r\n", "DATA": b"+OK: Data\r\n"}
    )
    greeting: bytes = b"+HELLO\r\n"
    data: bytes = b""
    close_after_data: bool = False
    raw: bool = False
    trickle: float = 0.0
    lines: list[str] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0
    port: int = 0
    ssl: object = None
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _got_data: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            self.finished += 1
            self.closed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.raw:
            await self._stream(reader, writer)
            return
        if self.trickle:
            while True:
                for byte in self.greeting:
                    writer.write(bytes((byte,)))
                    await writer.drain()
                    await asyncio.sleep(self.trickle)  # the device's pace, not a wait for a test
        writer.write(self.greeting)
        while line := await reader.readline():
            text = line.decode("latin-1").strip()  # the devices' character set
            self.lines.append(text)
            command = text.split(" ")[0]
            reply = self.replies.get(command, b'-ERROR: "Error: Unknown command"\r\n')
            if command == "QUIT":
                writer.write(b"+OK: Bye\r\n")
                return
            if command == "DATA" and reply.startswith(b"+"):
                writer.write(reply + self.data)
                await self._stream(reader, writer, sent=True)
                return
            writer.write(reply)
            await writer.drain()

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, sent: bool = False
    ) -> None:
        if not sent:
            writer.write(self.data)
        await writer.drain()
        if self.close_after_data:
            return
        while chunk := await reader.read(4096):
            self.received += chunk
            self._got_data.set()

    def drop_all(self) -> None:
        """Cut every open connection (as a rebooting device would)."""
        for writer in self._writers:
            writer.transport.abort()

    async def wait_finished(self, count: int = 1) -> None:
        """Wait until ``count`` connections have been handled completely."""
        async with asyncio.timeout(5):
            while self.finished < count:
                self.closed.clear()
                await self.closed.wait()

    async def wait_for_received(self, size: int) -> bytes:
        """Wait until ``size`` data-mode bytes arrived from the client."""
        async with asyncio.timeout(5):
            while len(self.received) < size:
                self._got_data.clear()
                await self._got_data.wait()
        return bytes(self.received)


class FakeTime:
    """An injectable clock and sleep: time only moves when the test says so."""

    def __init__(self, record_below: float = float("inf")) -> None:
        self.record_below = record_below
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._pending: list[tuple[float, asyncio.Event]] = []
        self._new_sleep = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        event = asyncio.Event()
        self._pending.append((self.now + delay, event))
        if delay < self.record_below:  # e.g. leave out a watchdog's long sleeps
            self.sleeps.append(delay)
            self._new_sleep.set()
        await event.wait()

    async def next_sleep(self, count: int = 1) -> float:
        """Wait until at least ``count`` sleeps were requested in total; return the last."""
        async with asyncio.timeout(5):
            while len(self.sleeps) < count:
                self._new_sleep.clear()
                await self._new_sleep.wait()
        return self.sleeps[count - 1]

    def advance(self, seconds: float) -> None:
        """Move time on and wake every sleeper whose time has come."""
        self.now += seconds
        for deadline, event in list(self._pending):
            if deadline <= self.now:
                event.set()
                self._pending.remove((deadline, event))


def free_port(host: str = LOOPBACK, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def http_server(
    response: bytes | None,
    *,
    read_request: bool = True,
    endless: bool = False,
    reset: bool = False,
) -> AsyncIterator[int]:
    """A TCP server that sends ``response`` to every request (``None``: never answers).

    Without ``read_request`` it answers at once; with ``endless`` it repeats ``response`` for
    as long as the client reads; then it closes, with a reset (RST) when ``reset``.
    """
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            if read_request:
                await reader.readuntil(b"\r\n\r\n")
            if response is None:
                await asyncio.Event().wait()
            while True:
                writer.write(response)
                await writer.drain()
                if not endless:
                    break
        except ConnectionError:
            pass  # the client stopped reading (endless)
        finally:
            handlers.discard(task)
            if reset:
                reset_connection(writer)
            else:
                writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def repliers(
    count: int, port: int, datagrams: Sequence[bytes], *, wrong_port: Sequence[bytes] = ()
) -> AsyncIterator[None]:
    """UDP sockets on ``127.0.0.1`` … ``127.0.0.<count>``, all on ``port``.

    On each query (to the first), every socket in turn sends ``datagrams`` to the querier, and a
    socket on another port of 127.0.0.1 sends ``wrong_port``.
    """
    loop = asyncio.get_running_loop()
    others = [
        (await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(host, port)))[0]
        for host in (f"127.0.0.{n}" for n in range(2, count + 1))
    ]
    stranger, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(LOOPBACK, 0)
    )

    class Replier(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.DatagramTransport)
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            assert data == QUERY
            for sender in (self.transport, *others):
                for datagram in datagrams:
                    sender.sendto(datagram, addr)
            for datagram in wrong_port:
                stranger.sendto(datagram, addr)

    first, _ = await loop.create_datagram_endpoint(Replier, local_addr=(LOOPBACK, port))
    try:
        yield
    finally:
        for transport in (first, stranger, *others):
            transport.close()


def deny_access(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """No access to the serial port ``path``: for real, unless root runs the tests.

    No mode bit stops root; then opening the port raises what ``os.open`` raises for everyone
    else.
    """
    path.chmod(0)
    if os.geteuid() != 0:
        return

    async def denied(port: str, **_options: object) -> object:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), port)

    monkeypatch.setattr(serialx, "open_serial_connection", denied)
