"""Channel sources: recordings and raw captures, replayed exactly."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from aiovbus.emulator import (
    Cycle,
    Emulator,
    LiveCaptureSource,
    RecordingSource,
    StaticSource,
)
from aiovbus.errors import RecordingError
from aiovbus.protocol import Packet
from aiovbus.recording import (
    HeaderSetStart,
    RawData,
    RecordedFrame,
    read_recording,
    write_recording,
)
from tests.vbus_lib.conftest import RECORDINGS, reference_file

from .client import Client
from .common import MX, P1, P2

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_recording_replay_yields_exactly_the_recorded_packets_in_order() -> None:
    data = reference_file("recordings", RECORDINGS[1]).read_bytes()
    expected = [
        dataclasses.replace(item.frame, channel=0)
        for item in read_recording(data)
        if isinstance(item, RecordedFrame)
    ]
    assert len(expected) == 4609
    source = RecordingSource(data, loop=False)
    assert source.controller_address == MX
    assert source.name == "DeltaSol MX"
    assert RecordingSource.channels_in(data) == [0, 1]
    async with Emulator(channels={1: source}, offer_interval=None, speed=1e9) as emulator:
        client = await Client.open(emulator)
        await client.start()
        frames = [await client.frame() for _ in expected]
        assert frames == expected
        assert client.receiver.stats.junk_bytes == 0
        await client.close()


def test_recording_source_timeline_channels_and_loop() -> None:
    first = Packet(0x0010, 0x0053, 0x0100, bytes(4), channel=0)
    mx = Packet(0x0010, MX, 0x0100, bytes(8), channel=1)
    data = write_recording(
        [
            RecordedFrame(500, dataclasses.replace(mx, command=0x0200)),  # before any header set
            HeaderSetStart(1_000),
            RecordedFrame(1_000, first),
            RecordedFrame(1_000, mx),
            HeaderSetStart(3_500),
            RawData(3_500, 3_600, 1, b"\x01\x02"),
            HeaderSetStart(6_000),  # empty on channel 1
            RecordedFrame(6_000, first),
        ]
    )
    everything = RecordingSource(data, loop=False)
    assert [c.delay for c in everything.cycles()] == [0.0, 0.5, 2.5, 2.5]
    assert everything.frame_count == 4
    on_one = RecordingSource(data, channel=1)
    cycles = on_one.cycles()
    wanted = [
        Cycle(0.0, (dataclasses.replace(mx, command=0x0200, channel=0).encode(),)),
        Cycle(0.5, (mx.encode(),)),
        Cycle(2.5, (b"\x01\x02",)),
        Cycle(0.5, (dataclasses.replace(mx, command=0x0200, channel=0).encode(),)),  # looped
    ]
    assert [next(cycles) for _ in range(4)] == wanted
    assert on_one.controller_address == MX
    only_dl3 = RecordingSource(data, channel=0, controller=None, name="Logger")
    assert (only_dl3.controller_address, only_dl3.name) == (None, "Logger")
    single = RecordingSource(write_recording([RecordedFrame(0, mx)]))
    assert [c.delay for _, c in zip(range(3), single.cycles(), strict=False)] == [0.0, 1.0, 1.0]
    with pytest.raises(RecordingError, match="no frames on channel 5"):
        RecordingSource(data, channel=5)


async def test_live_capture_replays_the_bytes_exactly() -> None:
    capture = b"\x00junk" + P1.encode() + P2.encode() + b"\xaa\x10" + P1.encode() + P2.encode()
    source = LiveCaptureSource(capture, loop=False)
    assert [cycle.units for cycle in source.cycles()] == [
        (b"\x00junk", P1.encode(), P2.encode(), b"\xaa\x10"),
        (P1.encode(), P2.encode()),
    ]
    assert source.controller_address == MX
    async with Emulator(channels={1: source}, offer_interval=None, speed=1000) as emulator:
        client = await Client.open(emulator)
        await client.start()
        while len(client.data) < len(capture):
            await client.read()
        assert bytes(client.data) == capture
        await client.close()
    looped = LiveCaptureSource(b"\x01\x02", interval=2.0)
    cycles = looped.cycles()
    assert [next(cycles) for _ in range(3)] == [
        Cycle(0.0, (b"\x01\x02",)),
        Cycle(2.0, (b"\x01\x02",)),
        Cycle(2.0, (b"\x01\x02",)),
    ]
    assert looped.controller_address is None
    with pytest.raises(RecordingError, match="empty"):
        LiveCaptureSource(b"")


@pytest.mark.parametrize(("interval", "cycles"), [(None, 1), (0.05, 4)])
def test_static_source_sends_its_frames_once_or_every_interval(
    interval: float | None, cycles: int
) -> None:
    """Once (a TCP client gets them on attaching), or again and again, as a controller resends."""
    source = StaticSource(P1, P2, interval=interval)
    units = (P1.encode(), P2.encode())
    taken = list(itertools.islice(source.cycles(), 4))
    assert taken == [Cycle(0.0, units)] + [Cycle(0.05, units)] * (cycles - 1)
    assert source.controller_address == P1.source
