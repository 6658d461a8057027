"""The emulator's serial port: a real pseudo-terminal, read by the library's own serial client.

No test sleeps for timing: every wait is for an event (a frame, a state), bounded by ``BOUND``.
"""

# ruff: noqa: ASYNC240 - looking at a serial_link in tmp_path is no I/O worth a thread

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import random
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aiovbus.emulator import (
    ChannelSource,
    Cycle,
    Emulator,
    Faults,
    Personality,
    StaticSource,
)
from aiovbus.errors import VBusConnectionError
from aiovbus.parameters import ParameterEngine, Timing
from aiovbus.protocol import Packet
from aiovbus.receiver import StreamReceiver
from aiovbus.session import Backoff, ConnectionConfig, SessionState, VBusSession, connect
from tests.vbus_lib.fakes import deny_access, needs_pty

from .common import MX, P1, P2, R1_HASH, R1_INDEX

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from aiovbus.protocol import Frame

pytestmark = [pytest.mark.usefixtures("socket_enabled"), needs_pty]

BOUND = 30.0  # a safety bound for waits on a loaded machine, never a timing assumption
FAST_RETRY = Backoff(initial=0.01, maximum=0.01, jitter=0.0)
UNPLUGGED = "The connection broke: device disconnected or in use by another process"


def numbered(n: int) -> Packet:
    """The ``n``-th packet of :class:`Counting`."""
    return Packet(0x0010, MX, 0x0100, n.to_bytes(4, "little"))


class Counting(ChannelSource):
    """Packets numbered 0, 1, 2 … every ``interval`` seconds: any two readers can be lined up."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(name="Counting", controller_address=None)
        self.interval = interval

    def cycles(self) -> Iterator[Cycle]:
        for n in itertools.count():
            yield Cycle(self.interval, (numbered(n).encode(),))


class Watched:
    """A session's frames and states, with a wait for a condition on them."""

    def __init__(self, session: VBusSession) -> None:
        self.session = session
        self.frames: list[Frame] = []
        self.states: list[tuple[SessionState, BaseException | None]] = []
        self._changed = asyncio.Event()
        session.subscribe(self._frame)
        session.add_state_listener(self._state)

    def _frame(self, frame: Frame) -> None:
        self.frames.append(frame)
        self._changed.set()

    def _state(self, state: SessionState, reason: BaseException | None) -> None:
        self.states.append((state, reason))
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(BOUND):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def numbers(self) -> list[int]:
        return [int.from_bytes(f.frame_data, "little") for f in self.frames if f.source == MX]


@contextlib.asynccontextmanager
async def watched(
    config: ConnectionConfig, backoff: Backoff | None = None
) -> AsyncIterator[Watched]:
    session = VBusSession(config, backoff=backoff)
    watcher = Watched(session)
    session.start()
    try:
        yield watcher
    finally:
        await session.stop()


@contextlib.asynccontextmanager
async def raw_port(serial_link: Path) -> AsyncIterator[asyncio.StreamReader]:
    """The port read as it is: no flush on opening, unlike a serial client (for fault tests)."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader),
        io.FileIO(os.open(serial_link, os.O_RDWR | os.O_NOCTTY), "r"),
    )
    try:
        yield reader
    finally:
        transport.close()


def open_fds() -> set[str]:
    return {path.name for path in Path("/proc/self/fd").iterdir()}


# -- the port ---------------------------------------------------------------------------------


async def test_open_replace_close_and_stop_leave_no_link_and_no_fd(serial_link: Path) -> None:
    serial_link.symlink_to("/dev/null")  # a stale serial_link from a previous plug-in is replaced
    before = open_fds()
    emulator = Emulator(channels={1: StaticSource(P1)}, offer_interval=None)
    assert await emulator.open_serial(serial_link) == str(serial_link)
    port = emulator.serial_port
    assert port is not None
    first = port.device
    assert str(serial_link.readlink()) == first
    assert first.startswith("/dev/pts/")
    assert stat.S_ISCHR(serial_link.stat().st_mode)
    await emulator.close_serial()
    assert emulator.serial_port is None
    assert not serial_link.is_symlink()
    assert await emulator.open_serial(os.fspath(serial_link)) == str(
        serial_link
    )  # plugged in again
    assert serial_link.is_symlink()
    await emulator.stop()  # without start(): stop() still unplugs the port
    assert not serial_link.is_symlink()
    assert open_fds() == before


async def test_open_serial_rejects_an_unknown_channel(serial_link: Path) -> None:
    emulator = Emulator()
    with pytest.raises(ValueError, match=r"no channel 2; the emulator has \[1\]"):
        await emulator.open_serial(serial_link, channel=2)
    assert not serial_link.is_symlink()


# -- live data --------------------------------------------------------------------------------


async def test_live_data_over_the_port_equals_a_raw_tcp_client(serial_link: Path) -> None:
    async with Emulator(personality=Personality.RAW, channels={1: Counting()}) as emulator:
        await emulator.open_serial(serial_link)
        serial_config = ConnectionConfig(serial_port=str(serial_link))
        tcp_config = ConnectionConfig(host="127.0.0.1", port=emulator.port, raw=True)
        async with watched(serial_config) as serial, watched(tcp_config) as tcp:
            await serial.until(lambda: len(serial.frames) >= 5)
            await tcp.until(lambda: len(tcp.frames) >= 5)
            common = max(serial.numbers()[0], tcp.numbers()[0]) + 20
            await serial.until(lambda: serial.numbers()[-1] >= common)
            await tcp.until(lambda: tcp.numbers()[-1] >= common)
    for watcher in (serial, tcp):
        numbers = watcher.numbers()
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # nothing lost
        assert [f.encode() for f in watcher.frames] == [numbered(n).encode() for n in numbers]
        assert watcher.session.stats.junk_bytes == 0
    shared = sorted(set(serial.numbers()) & set(tcp.numbers()))
    assert len(shared) >= 20
    serial_bytes = {n: f.encode() for n, f in zip(serial.numbers(), serial.frames, strict=True)}
    tcp_bytes = {n: f.encode() for n, f in zip(tcp.numbers(), tcp.frames, strict=True)}
    assert [serial_bytes[n] for n in shared] == [tcp_bytes[n] for n in shared]


async def test_a_parameter_write_over_the_port_reaches_the_controller(serial_link: Path) -> None:
    """Relay 1 to manual on the synthetic DeltaSol MX; the TCP server is never started."""
    emulator = Emulator(offer_interval=0.05)
    try:
        await emulator.open_serial(serial_link)
        session = VBusSession(ConnectionConfig(serial_port=str(serial_link)))
        session.start()
        timing = Timing(offer=BOUND, request=1.0, increment=0.1, release=0.2, deadline=BOUND)
        engine = ParameterEngine(session, timing=timing)
        try:
            async with asyncio.timeout(BOUND):
                await session.wait_connected()
                result = await engine.set(MX, 2, id_hash=R1_HASH)
        finally:
            await engine.close()
            await session.stop()
        assert (result.index, result.value) == (R1_INDEX, 2)
        store = emulator.controller(1).store
        assert store.writes == [(R1_INDEX, 2)]
        assert store.read(R1_INDEX) == 2
    finally:
        await emulator.stop()


async def test_the_port_vanishes_and_comes_back(serial_link: Path) -> None:
    async with Emulator(channels={1: Counting()}, offer_interval=None) as emulator:
        await emulator.open_serial(serial_link)
        config = ConnectionConfig(serial_port=str(serial_link))
        async with watched(config, backoff=FAST_RETRY) as serial:
            await serial.until(lambda: len(serial.frames) >= 3)
            await emulator.close_serial()  # unplugged

            def failures() -> list[str]:
                return [str(reason) for state, reason in serial.states[1:] if reason is not None]

            missing = f"Cannot open the serial port {serial_link}: No such file or directory"
            await serial.until(lambda: failures()[2:] == [missing] * (len(failures()) - 2))
            await serial.until(lambda: len(failures()) >= 3)  # it keeps trying
            assert failures()[:3] == [UNPLUGGED, missing, missing]
            assert all(
                isinstance(reason, VBusConnectionError) and state == SessionState.DISCONNECTED
                for state, reason in serial.states[2:]
            )
            assert serial.session.state == SessionState.DISCONNECTED
            seen = len(serial.frames)
            await emulator.open_serial(serial_link)  # plugged in again: it reconnects by itself
            await serial.until(lambda: len(serial.frames) >= seen + 3)
            assert serial.session.state == SessionState.CONNECTED
            assert serial.session.connects == 2
            after = serial.numbers()[seen:]
            assert after == list(range(after[0], after[0] + len(after)))


@pytest.mark.parametrize(
    "garbage",
    [
        random.Random(16).randbytes(1 << 18),  # every byte value: sync bytes, spurious frames
        bytes(b for b in random.Random(17).randbytes(1 << 16) if b != 0xAA),  # never a frame
        b"\xaa" * 4096,  # only frame starts
    ],
    ids=["random-flood", "no-sync", "sync-only"],
)
async def test_garbage_on_the_port_is_counted_and_frames_after_it_decode(
    serial_link: Path, quiet_port: Emulator, garbage: bytes
) -> None:
    expected = StreamReceiver()
    frames = expected.feed(garbage + P1.encode())
    assert frames[-1] == P1
    # The port's source sends nothing: the stream is exactly the garbage and the frame after it.
    # The connection, not a session: a serial session counts as connected only once a frame
    # arrives, and what is written before the port is open is discarded when it opens.
    connection = await connect(ConnectionConfig(serial_port=str(serial_link)))
    try:
        port = quiet_port.serial_port
        assert port is not None
        port.inject(garbage)
        port.inject(P1.encode())
        received: list[Frame] = []
        async with asyncio.timeout(BOUND):
            while len(received) < len(frames):
                received += await connection.read_frames()
        assert received == frames
        stats = connection.stats
        assert (stats.bytes, stats.junk_bytes, stats.checksum_errors) == (
            len(garbage) + len(P1.encode()),
            expected.stats.junk_bytes,
            expected.stats.checksum_errors,
        )
        assert stats.junk_bytes > 0
    finally:
        await connection.close()


# -- faults -----------------------------------------------------------------------------------


async def test_corrupt_every_flips_the_same_bits_as_on_a_tcp_connection(serial_link: Path) -> None:
    units = P1.encode() + P2.encode()
    expected = bytearray(units)
    for position in range(6, len(expected), 7):
        expected[position] ^= 0x01
    emulator = Emulator(
        channels={1: StaticSource(P1, P2)}, offer_interval=None, faults=Faults(corrupt_every=7)
    )
    try:
        await emulator.open_serial(serial_link)
        async with raw_port(serial_link) as reader, asyncio.timeout(BOUND):
            assert await reader.readexactly(len(units)) == bytes(expected)
    finally:
        await emulator.stop()


async def test_a_silent_port_sends_nothing(serial_link: Path) -> None:
    emulator = Emulator(
        channels={1: StaticSource(P1)}, offer_interval=None, faults=Faults(silent=True)
    )
    try:
        await emulator.open_serial(serial_link)  # the live packets go out (and are lost) on return
        async with raw_port(serial_link) as reader, asyncio.timeout(BOUND):
            assert emulator.controller().offer_bus()  # sent now, and lost too
            port = emulator.serial_port
            assert port is not None
            port.inject(b"noise")  # what a port carries besides the bus
            assert await reader.readexactly(5) == b"noise"  # nothing came before it
    finally:
        await emulator.stop()


async def test_drop_after_bytes_unplugs_the_port(serial_link: Path) -> None:
    """A fault that closes a client connection unplugs a serial port: it is never half open."""
    emulator = Emulator(
        channels={1: StaticSource(P1)},
        offer_interval=None,
        faults=Faults(drop_after_bytes=len(P1.encode()) + 1),
    )
    try:
        await emulator.open_serial(serial_link)
        async with raw_port(serial_link) as reader, asyncio.timeout(BOUND):
            assert await reader.readexactly(len(P1.encode())) == P1.encode()
            assert emulator.controller().offer_bus()  # byte N: the offer goes, then the port
            assert emulator.serial_port is None
            assert not serial_link.is_symlink()
            # The terminal hung up: end of file (or EIO), what was still queued is gone.
            with contextlib.suppress(OSError):
                assert await reader.read() == b""
    finally:
        await emulator.stop()


# -- a port that does not open ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "No such file or directory"),
        ("unplugged", "No such file or directory"),
        ("regular-file", "Inappropriate ioctl for device"),
        ("dev-null", "Inappropriate ioctl for device"),
        ("busy", "Serial port '{port}' is already locked by another process"),
        ("permission", "Permission denied"),
    ],
)
async def test_a_port_that_does_not_open(
    kind: str,
    reason: str,
    serial_link: Path,
    tmp_path: Path,
    quiet_port: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = str(serial_link)
    holder = None
    if kind == "missing":
        port = str(tmp_path / "ttyUSB9")
    elif kind == "unplugged":
        await quiet_port.close_serial()
    elif kind == "regular-file":
        port = str(tmp_path / "capture.bin")
        Path(port).write_bytes(P1.encode())
    elif kind == "dev-null":
        port = os.devnull
    elif kind == "busy":
        holder = await connect(ConnectionConfig(serial_port=port))  # another program has it
    else:
        deny_access(monkeypatch, serial_link)
    try:
        with pytest.raises(VBusConnectionError) as caught:
            await connect(ConnectionConfig(serial_port=port))
    finally:
        if holder is not None:
            await holder.close()
    assert str(caught.value) == f"Cannot open the serial port {port}: {reason.format(port=port)}"
