"""A fault-injecting TCP proxy on loopback, between a VBus client and a real device (the emulator).

The proxy forwards both directions untouched and follows the conversation: which handshake
command the client sent last, and when data mode began. At one :class:`Step` of a connection it
replaces what the device sends with one :class:`Failure` (a reset, an end of stream, silence,
garbage, a garbled line or a flood), for the first ``times`` connections; later connections
pass through, so a client that retries gets through. It knows nothing of the client's code: it
sees only bytes. Errors that no byte on the wire can cause on loopback (TLS, EPIPE, ETIMEDOUT,
EHOSTUNREACH) it injects into the client's own transport, found by its address among
:func:`client_streams`, the way asyncio reports a failed socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Self

import pytest

from aiovbus.aio import reset_connection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

type Address = tuple[str, int]
type Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

#: Binary junk without CR, LF or SYNC (0xAA): no line break, no frame.
GARBAGE: Final = bytes(b for b in range(256) if b not in (0x0A, 0x0D, 0xAA)) * 64
#: A line that starts with none of ``+``, ``-`` and ``*``: a rejection that lost its first byte.
GARBLED_LINE: Final = b'ERROR: "Error: Password rejected"\r\n'
FLOOD_SIZE: Final = 1 << 20


class Step(StrEnum):
    """Where in a connection the fault strikes (what the device is about to send)."""

    GREETING = "GREETING"  # the +HELLO line
    CONNECT = "CONNECT"  # the reply to CONNECT <via tag> (VBus.net)
    PASS = "PASS"
    CHANNELLIST = "CHANNELLIST"
    CHANNEL = "CHANNEL"
    DATA = "DATA"  # the reply to DATA (with the first frames of the stream)
    STREAM = "STREAM"  # data mode, once the first frames went through
    SEND = "SEND"  # data mode, when the client sends (e.g. a parameter datagram)


HANDSHAKE_STEPS: Final = (
    Step.GREETING,
    Step.CONNECT,
    Step.PASS,
    Step.CHANNELLIST,
    Step.CHANNEL,
    Step.DATA,
)


class Failure(StrEnum):
    """What the client gets instead of the device's bytes."""

    RESET = "reset"  # RST: ConnectionResetError on the client's next read or write
    EOF = "eof"  # a clean close (FIN) in the middle of the conversation
    SILENCE = "silence"  # nothing more; the connection stays open
    GARBAGE = "garbage"  # binary junk without line breaks or frames, then silence
    LINE = "line"  # GARBLED_LINE (no reply a client can parse), then silence
    FLOOD = "flood"  # 1 MiB of line breaks (handshake) or SYNC bytes (data mode), then silence
    # The client's own transport fails (TRANSPORT_ERRORS), as a socket or TLS error would:
    TLS = "tls"  # a corrupted TLS record
    PIPE = "epipe"  # broken pipe
    TIMED_OUT = "etimedout"  # TCP gave up retransmitting (not a deadline of the client's)
    UNREACHABLE = "ehostunreach"  # an ICMP "no route to host" for an open connection


def _os_error(code: int) -> Callable[[], OSError]:
    return lambda: OSError(code, os.strerror(code))  # EPIPE: BrokenPipeError, and so on


#: What the client's transport fails with, per failure injected there.
TRANSPORT_ERRORS: Final[dict[Failure, Callable[[], OSError]]] = {
    Failure.TLS: lambda: ssl.SSLError(
        1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac"
    ),
    Failure.PIPE: _os_error(errno.EPIPE),
    Failure.TIMED_OUT: _os_error(errno.ETIMEDOUT),
    Failure.UNREACHABLE: _os_error(errno.EHOSTUNREACH),
}

_ENDING: Final = (Failure.RESET, Failure.EOF)


@contextlib.contextmanager
def client_streams() -> Iterator[dict[Address, Streams]]:
    """The streams of every connection ``asyncio.open_connection`` opens meanwhile, by address."""
    streams: dict[Address, Streams] = {}
    real = asyncio.open_connection

    async def open_connection(*args: Any, **kwargs: Any) -> Streams:
        reader, writer = await real(*args, **kwargs)
        streams[writer.get_extra_info("sockname")[:2]] = (reader, writer)
        return reader, writer

    with pytest.MonkeyPatch.context() as patcher:
        patcher.setattr(asyncio, "open_connection", open_connection)
        yield streams


def fail_transport(streams: Streams, error: OSError) -> None:
    """What asyncio does when the socket (or TLS) under ``streams`` fails with ``error``.

    The pending or next read raises ``error``, and so does the next drain after a write; the
    socket closes.
    """
    reader, writer = streams
    reader.set_exception(error)
    writer.transport.abort()


@dataclass
class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:upstream``, with one fault for a while."""

    upstream: int
    clients: dict[Address, Streams] | None = None  # from client_streams(): for TRANSPORT_ERRORS
    step: Step | None = None
    failure: Failure | None = None
    times: int = 1
    port: int = 0
    connections: int = 0
    injected: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _links: set[_Link] = field(default_factory=set)
    _injected_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def arm(self, step: Step, failure: Failure, times: int = 1) -> None:
        """Inject ``failure`` at ``step`` into each of the next ``times`` connections."""
        # The client's transport would fail before the client has read the start of data mode.
        assert step != Step.STREAM or failure not in TRANSPORT_ERRORS, "use fail_all() there"
        self.step, self.failure, self.times = step, failure, times

    def reset_all(self) -> None:
        """Reset every open client connection (a data logger that reboots)."""
        for link in self._links:
            reset_connection(link.client_writer)

    def client_connections(self) -> list[Streams]:
        """The client's own streams of every open connection."""
        return [link.client_streams() for link in self._links]

    def fail_all(self, error: OSError) -> None:
        """Make the transport of every open client connection fail with ``error``."""
        for streams in self.client_connections():
            fail_transport(streams, error)

    async def wait_injected(self, count: int = 1) -> None:
        """Until ``count`` faults were injected in total (at most 10 s)."""
        async with asyncio.timeout(10):
            while self.injected < count:
                self._injected_event.clear()
                await self._injected_event.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        faulty = self.step is not None and self.times > 0
        if faulty:
            self.times -= 1
        link = _Link(self, reader, writer, self.step if faulty else None, self.failure)
        self._links.add(link)
        try:
            await link.run()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(link)
            self._tasks.discard(task)
            await link.close()

    def _count(self) -> None:
        self.injected += 1
        self._injected_event.set()


class _Link:
    """One proxied connection."""

    def __init__(
        self,
        proxy: FaultProxy,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        step: Step | None,
        failure: Failure | None,
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = reader, writer
        self.step, self.failure = step, failure
        self.current = Step.GREETING  # what the device answers next
        self.data_mode = False
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.struck = asyncio.Event()

    def client_streams(self) -> Streams:
        """The client's own streams at the other end of this connection."""
        assert self.proxy.clients is not None, "give the proxy client_streams()"
        return self.proxy.clients[self.client_writer.get_extra_info("peername")[:2]]

    async def run(self) -> None:
        upstream_reader, self.upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.proxy.upstream
        )
        to_device = asyncio.create_task(self._to_device(self.upstream_writer))
        to_client = asyncio.create_task(self._to_client(upstream_reader))
        try:
            await asyncio.wait((to_device, to_client), return_when=asyncio.FIRST_COMPLETED)
            if self.struck.is_set() and self.failure not in _ENDING:
                await to_device  # silent from now on: until the client gives up
        finally:
            for task in (to_device, to_client):
                task.cancel()
            await asyncio.gather(to_device, to_client, return_exceptions=True)

    async def _to_device(self, writer: asyncio.StreamWriter) -> None:
        """Forward the client's bytes; note the commands it sends."""
        pending = b""
        while chunk := await self.client_reader.read(65536):
            if self.struck.is_set():
                continue  # the device is gone for the client: swallow what it sends
            if self.data_mode:
                if self.step == Step.SEND:
                    await self._strike()
                    if self.failure in _ENDING:
                        return
                    continue
            else:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    word = line.strip().split(b" ")[0].decode("latin-1")
                    if word in Step.__members__:
                        self.current = Step(word)
            writer.write(chunk)
            await writer.drain()

    async def _to_client(self, reader: asyncio.StreamReader) -> None:
        """Forward the device's bytes, or strike at the chosen step."""
        while chunk := await reader.read(65536):
            if self.struck.is_set():
                continue
            strike = not self.data_mode and self.step == self.current
            if not self.data_mode and self.current == Step.DATA and chunk.startswith(b"+"):
                self.data_mode = True
            if not strike:
                self.client_writer.write(chunk)
                await self.client_writer.drain()
                strike = self.data_mode and self.step == Step.STREAM
            if strike:
                await self._strike()
                if self.failure in _ENDING:
                    return

    async def _strike(self) -> None:
        self.struck.set()
        self.proxy._count()
        writer = self.client_writer
        match self.failure:
            case Failure.RESET:
                reset_connection(writer)
            case Failure.EOF:
                writer.close()
            case Failure.GARBAGE:
                writer.write(GARBAGE)
            case Failure.LINE:
                writer.write(GARBLED_LINE)
            case Failure.FLOOD:
                writer.write(
                    (b"\r\n" if self.step in HANDSHAKE_STEPS else b"\xaa") * (FLOOD_SIZE // 2)
                )
            case failure if failure in TRANSPORT_ERRORS:
                fail_transport(self.client_streams(), TRANSPORT_ERRORS[failure]())
            case _:
                pass
        with contextlib.suppress(OSError):
            await writer.drain()

    async def close(self) -> None:
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
