"""Serial ports that fail (issue 16): odd paths, a cut cable, leaked descriptors.

Each test uses a real pseudo-terminal (the emulator's serial port) and the library's own
serial client; time that a test has to move is injected (:class:`~tests.vbus_lib.fakes.FakeTime`),
every other wait is for an event, bounded by ``BOUND``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aiovbus.emulator import Emulator, Faults, StaticSource
from aiovbus.errors import VBusConnectionError, VBusTimeoutError
from aiovbus.session import Backoff, ConnectionConfig, SessionState, VBusSession, connect
from tests.vbus_lib.fakes import FakeTime, needs_pty, no_port_path

from .emulator.common import P1

pytestmark = [pytest.mark.usefixtures("socket_enabled"), needs_pty]

BOUND = 30.0  # a safety bound for waits on a loaded machine, never a timing assumption


def open_fds() -> set[str]:
    return {path.name for path in Path("/proc/self/fd").iterdir()}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("directory", "Is a directory"),
        ("fifo", "Inappropriate ioctl for device"),
        ("dangling-symlink", "No such file or directory"),
        ("symlink-loop", "Too many levels of symbolic links"),
        ("below-a-file", "Not a directory"),
        ("long-name", "File name too long"),
        ("long-path", "File name too long"),
        ("spaces-and-unicode", "No such file or directory"),
        ("nul-byte", "open: embedded null character in path"),
    ],
)
async def test_a_path_that_is_no_serial_port(kind: str, reason: str, tmp_path: Path) -> None:
    """Each gives a VBusConnectionError that names the port and the reason, and leaks no fd."""
    port = no_port_path(kind, tmp_path)
    before = open_fds()
    with pytest.raises(VBusConnectionError) as caught:
        await connect(ConnectionConfig(serial_port=port))
    assert str(caught.value) == f"Cannot open the serial port {port}: {reason}"
    assert open_fds() == before


async def test_a_port_with_spaces_and_unicode_in_its_path_streams(tmp_path: Path) -> None:
    link = tmp_path / "VBus Adapter ä ✓"
    async with Emulator(channels={1: StaticSource(P1, interval=0.05)}, offer_interval=None) as em:
        await em.open_serial(link)
        connection = await connect(ConnectionConfig(serial_port=str(link)))
        try:
            async with asyncio.timeout(BOUND):
                while P1 not in await connection.read_frames():
                    pass
        finally:
            await connection.close()


async def test_failed_opens_leave_no_fd_behind(serial_link: Path, quiet_port: Emulator) -> None:
    """A busy port (the lock is taken after the open) and a non-terminal, twenty times each."""
    holder = await connect(ConnectionConfig(serial_port=str(serial_link)))
    try:
        before = open_fds()
        for port in (str(serial_link), os.devnull):
            for _ in range(20):
                with pytest.raises(VBusConnectionError):
                    await connect(ConnectionConfig(serial_port=port))
        assert open_fds() == before
    finally:
        await holder.close()


async def test_a_cut_cable_drops_and_reopens_the_port(serial_link: Path) -> None:
    """Adapter plugged in, nothing on it: the watchdog closes the port and the session reopens it.

    The watchdog's deadline passes by the injected clock; the port is the emulator's, silenced.
    """
    fake = FakeTime()
    emulator = Emulator(
        channels={1: StaticSource(P1, interval=0.05)}, offer_interval=None, faults=Faults()
    )
    try:
        await emulator.open_serial(serial_link)
        session = VBusSession(
            ConnectionConfig(serial_port=str(serial_link)),
            watchdog_timeout=60,
            clock=fake.clock,
            sleep=fake.sleep,
            backoff=Backoff(jitter=0.0),
        )
        frames: list[object] = []
        got = asyncio.Event()
        session.subscribe(lambda frame: (frames.append(frame), got.set()))
        session.start()
        async with asyncio.timeout(BOUND):
            await session.wait_connected()
            await got.wait()
            emulator.faults.silent = True  # the VBus cable is cut
            assert await fake.next_sleep(1) == 60  # the watchdog waits for its deadline
            fake.advance(60)
            assert await fake.next_sleep(2) == 1.0  # disconnected: the backoff before a retry
        assert session.state == SessionState.DISCONNECTED
        assert isinstance(session.last_error, VBusTimeoutError)
        assert str(session.last_error) == "No VBus data from the device for 60 s"
        # The port is closed: another program could take it now.
        other = await connect(ConnectionConfig(serial_port=str(serial_link)))
        await other.close()
        states: list[SessionState] = []
        session.add_state_listener(lambda state, _reason: states.append(state))
        fake.advance(1)  # the retry: the port opens again, the cable still cut
        async with asyncio.timeout(BOUND):
            assert await fake.next_sleep(3) == 60  # the reopened port's watchdog
        assert session.connects == 2
        # An open port is no connection: only data is (no "connected" to flap with).
        assert session.state == SessionState.DISCONNECTED
        assert states == []
        emulator.faults.silent = False  # the cable is back
        got.clear()
        async with asyncio.timeout(BOUND):
            await got.wait()
        assert session.state == SessionState.CONNECTED
        assert states == [SessionState.CONNECTED]
        assert session.connects == 2
        await session.stop()
    finally:
        await emulator.stop()


async def test_unplug_cycles_leave_no_fd_and_no_task_behind(serial_link: Path) -> None:
    """Twenty times unplugged and plugged in again under a running session, then stopped."""
    async with Emulator(
        channels={1: StaticSource(P1, interval=0.02)}, offer_interval=None
    ) as emulator:
        tasks = asyncio.all_tasks()
        before = open_fds()
        session = VBusSession(
            ConnectionConfig(serial_port=str(serial_link)),
            backoff=Backoff(initial=0.01, maximum=0.01, jitter=0.0),
        )
        got = asyncio.Event()
        session.subscribe(lambda _frame: got.set())
        states: list[SessionState] = []
        changed = asyncio.Event()
        session.add_state_listener(lambda state, _reason: (states.append(state), changed.set()))
        session.start()
        async with asyncio.timeout(BOUND):
            for _ in range(20):
                await emulator.open_serial(serial_link)
                got.clear()
                await got.wait()
                await emulator.close_serial()
                while session.state != SessionState.DISCONNECTED:
                    changed.clear()
                    await changed.wait()
        assert session.connects == 20
        await session.stop()
        assert open_fds() == before
        # Only the emulator's channel pump is new (it runs while the emulator does).
        assert [task.get_coro().__qualname__ for task in asyncio.all_tasks() - tasks] == [
            "Channel._pump"
        ]
