"""The device emulator: handshakes per personality, channel sources, bus master, faults, CLI.

The emulator is driven with raw asyncio streams on loopback, so every expectation is the exact
bytes a client sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import re
import signal
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from custom_components.resol_vbus.vbus import emulator as emulator_module
from custom_components.resol_vbus.vbus.catalog import catalog_for
from custom_components.resol_vbus.vbus.cli import build_parser
from custom_components.resol_vbus.vbus.discovery import fetch_device_information
from custom_components.resol_vbus.vbus.emulator import (
    MX_CHANGESET,
    NO_SENSOR,
    ChannelSource,
    ControllerSimulator,
    Cycle,
    Emulator,
    Faults,
    LiveCaptureSource,
    ParameterStore,
    Personality,
    RecordingSource,
    StaticSource,
    StoredValue,
    SyntheticSource,
    _Simulation,
    build_emulator,
    cli_serial,
    resolve_controller,
    serve,
)
from custom_components.resol_vbus.vbus.errors import EmulatorError, RecordingError
from custom_components.resol_vbus.vbus.protocol import Datagram, Packet
from custom_components.resol_vbus.vbus.receiver import StreamReceiver
from custom_components.resol_vbus.vbus.recording import (
    HeaderSetStart,
    RawData,
    RecordedFrame,
    read_recording,
    write_recording,
)
from custom_components.resol_vbus.vbus.specification import Specification

from .conftest import RECORDINGS, reference_file

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from custom_components.resol_vbus.vbus.protocol import Frame

pytestmark = pytest.mark.usefixtures("socket_enabled")

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0
SELF = 0x0020
MX = 0x7E11
R1_HASH = 763685401
R1_INDEX = 1977
P1 = Packet(0x0010, MX, 0x0100, bytes(range(0x10, 0x18)))
P2 = Packet(0x0010, 0x7E31, 0x0100, bytes(range(0x80, 0x88)))
OK_PASS = b"+OK: Password accepted\r\n"
OK_DATA = b"+OK: Data incoming...\r\n"
UNKNOWN = b'-ERROR: "Error: Unknown command"\r\n'
NEED_PASS = b'-ERROR: "Error: Password required"\r\n'
REJECTED = b'-ERROR: "Error: Password rejected"\r\n'
NO_CHANNEL = b'-ERROR: "Error: Channel not available"\r\n'


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


# -- handshakes ---------------------------------------------------------------------------------


async def test_dl2_handshake_lines_and_data_in_the_same_segment() -> None:
    async with Emulator(channels=static(P1, P2), offer_interval=None) as emulator:
        reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
        async with asyncio.timeout(TIMEOUT):
            assert (
                await reader.readline() == b"+HELLO This is DL2-001E66E7A002, at your service!\r\n"
            )
            writer.write(b"PASS wrong\r\n")
            assert await reader.readline() == REJECTED
            writer.write(b"PASS vbus\r\n")  # a failed PASS did not close the connection
            assert await reader.readline() == OK_PASS
            writer.write(b"DATA\r\n")
            assert await reader.read(65536) == OK_DATA + P1.encode() + P2.encode()
        # A later client gets the current packets together with the DATA reply as well.
        second = await Client.open(emulator)
        assert await second.line() == b"+HELLO This is DL2-001E66E7A002, at your service!\r\n"
        second.writer.write(b"PASS vbus\r\nDATA\r\n")
        assert await second.line() == OK_PASS
        async with asyncio.timeout(TIMEOUT):
            assert await second.reader.read(65536) == OK_DATA + P1.encode() + P2.encode()
        assert emulator.connections == 2
        writer.close()
        await second.close()
        await within(emulator.wait_connections(0))


@pytest.mark.parametrize(
    ("personality", "greeting"),
    [
        (Personality.LAN, b"+HELLO This is VBus/LAN-001E66E7A00B, at your service!\r\n"),
        (Personality.DL2, b"+HELLO This is DL2-001E66E7A002, at your service!\r\n"),
        (Personality.KM2, b"+HELLO This is KM2-A84041E7A00A, at your service!\r\n"),
    ],
)
async def test_single_channel_devices_reject_connect_and_channel_commands(
    personality: Personality, greeting: bytes
) -> None:
    async with Emulator(personality=personality, channels=static(P1)) as emulator:
        client = await Client.open(emulator)
        assert await client.line() == greeting
        assert await client.command("CONNECT mylogger") == UNKNOWN
        assert await client.command("DATA") == NEED_PASS
        assert await client.command("pass vbus") == UNKNOWN  # commands are case-sensitive
        assert await client.command("HELLO") == UNKNOWN
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNELLIST") == UNKNOWN
        assert await client.command("CHANNEL 1") == UNKNOWN
        assert await client.command("QUIT") == b"+OK: Bye\r\n"
        assert await client.eof() == b""
        await client.close()


async def test_lf_only_lines_empty_lines_and_overlong_lines() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        client = await Client.open(emulator)
        await client.line()
        client.writer.write(b"\r\n\n  \nPASS vbus\n")
        assert await client.line() == OK_PASS
        client.writer.write(b"X" * 5000 + b"\n")
        assert await client.line() == b'-ERROR: "Error: Line too long"\r\n'
        assert await client.eof() == b""
        await client.close()


async def test_vbusnet_needs_connect_with_a_known_via_tag_before_pass() -> None:
    async with Emulator(
        personality=Personality.VBUSNET, via_tags=("d01234567890",), channels=static(P1)
    ) as emulator:
        client = await Client.open(emulator)
        assert await client.line() == (
            b"+HELLO This is VBus.net on behalf of all its devices, welcome, stranger!\r\n"
        )
        assert await client.command("PASS vbus") == (
            b'-ERROR: "Error: CONNECT to a device first"\r\n'
        )
        assert await client.command("CONNECT nobody") == b'-ERROR: "Error: Unknown via tag"\r\n'
        assert await client.command("PASS vbus") == (
            b'-ERROR: "Error: CONNECT to a device first"\r\n'
        )
        assert await client.command("CONNECT d01234567890") == b"+OK: Connection established\r\n"
        assert await client.command("PASS wrong") == REJECTED
        assert await client.command("CHANNELLIST") == NEED_PASS
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNELLIST") == b"*1:DeltaSol MX\r\n"
        assert await client.line() == b"+OK: Now you know my fellows...\r\n"
        assert await client.command("CHANNEL 1") == b"+OK: Channel selected\r\n"
        assert await client.command("DATA") == OK_DATA
        assert await client.frame() == P1
        await client.close()


async def test_dl3_lists_named_channels_and_streams_the_selected_one() -> None:
    channels: dict[int, ChannelSource] = {
        1: SyntheticSource(MX),
        2: SyntheticSource(0x4212),
        4: StaticSource(P2, controller=MX, name="Garage"),
    }
    async with Emulator(
        personality=Personality.DL3, channels=channels, offer_interval=None
    ) as emulator:
        client = await Client.open(emulator)
        assert await client.line() == b"+HELLO This is DL3-001E66E7A003, at your service!\r\n"
        assert await client.command("CHANNELLIST") == NEED_PASS
        assert await client.command("CHANNEL 2") == NEED_PASS
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNELLIST") == b"*1:DeltaSol MX\r\n"
        assert [await client.line() for _ in range(3)] == [
            b"*2:DeltaSol C\r\n",
            b"*4:Garage\r\n",
            b"+OK: Now you know my fellows...\r\n",
        ]
        for wrong in ("3", "7", "x", "", "-1"):
            assert await client.command(f"CHANNEL {wrong}".strip()) == NO_CHANNEL
        assert await client.command("CHANNEL 2") == b"+OK: Channel selected\r\n"
        assert await client.command("DATA") == OK_DATA
        deltasol_c = await client.frame()
        assert isinstance(deltasol_c, Packet)
        assert (deltasol_c.source, deltasol_c.destination) == (0x4212, 0x0010)

        mx_client = await Client.open(emulator)
        await mx_client.start(channel=1)
        assert {(await mx_client.frame()).source for _ in range(5)} == {
            0x7E11,
            0x7E12,
            0x7E21,
            0x7E31,
            0x7E32,
        }
        # DATA without CHANNEL streams channel 0: the DL3's own inputs (no bus master there).
        own = await Client.open(emulator)
        await own.start()
        dl3 = await own.frame()
        assert isinstance(dl3, Packet)
        assert dl3.source == 0x0053
        resistor = Specification.bundled().decoder_for(dl3).decode(dl3.frame_data)[0]
        assert 900 < resistor < 1300
        channel_zero = await Client.open(emulator)
        await channel_zero.start(channel=0)
        assert (await channel_zero.frame()).source == 0x0053
        assert sorted(emulator.controllers) == [1, 2, 4]
        with pytest.raises(KeyError):
            emulator.controller(0)
        for each in (client, mx_client, own, channel_zero):
            await each.close()


async def test_raw_personality_streams_from_connect_without_handshake() -> None:
    async with Emulator(
        personality=Personality.RAW, channels=static(P1, P2), offer_interval=None
    ) as emulator:
        client = await Client.open(emulator)
        async with asyncio.timeout(TIMEOUT):
            assert await client.reader.read(65536) == P1.encode() + P2.encode()
        assert emulator.describe() == f"emulating raw on 127.0.0.1:{emulator.port} (no handshake)"
        await client.close()


async def test_refused_password_channel_and_data_faults() -> None:
    faults = Faults(refuse_password=True)
    async with Emulator(
        personality=Personality.DL3, channels=static(P1), faults=faults
    ) as emulator:
        client = await Client.open(emulator)
        await client.line()
        assert await client.command("PASS vbus") == REJECTED
        assert await client.command("DATA") == NEED_PASS
        faults.refuse_password = False
        faults.reject_channel = True
        faults.reject_data = True
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNEL 1") == NO_CHANNEL
        assert await client.command("DATA") == b'-ERROR: "Error: Data mode not available"\r\n'
        faults.reject_channel = faults.reject_data = False
        assert await client.command("CHANNEL 1") == b"+OK: Channel selected\r\n"
        assert await client.command("DATA") == OK_DATA
        assert await client.frame() == P1
        await client.close()


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="exactly one channel"):
        Emulator(channels={1: StaticSource(), 2: StaticSource()})
    with pytest.raises(ValueError, match=r"numbered 0\.\.6"):
        Emulator(personality=Personality.DL3, channels={7: StaticSource()})
    with pytest.raises(ValueError, match=r"numbered 0\.\.6"):
        Emulator(channels={})
    emulator = Emulator(channels={1: StaticSource(controller=None)})
    assert emulator.controllers == {}
    with pytest.raises(KeyError):
        emulator.controller()
    assert emulator.channel_names == {1: "VBus"}
    assert Emulator(password="secret").describe() == (
        "emulating dl2 on 127.0.0.1:0 (custom password)"
    )


# -- channel sources ----------------------------------------------------------------------------


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


def decoded(packet: Frame) -> dict[str, float]:
    assert isinstance(packet, Packet)
    decoder = Specification.bundled().decoder_for(packet)
    assert decoder is not None
    values = decoder.decode(packet.frame_data)
    return {f.field_id: v for f, v in zip(decoder.fields, values, strict=True) if v is not None}


async def test_synthetic_deltasol_mx_decodes_to_sane_moving_values() -> None:
    start = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
    source = SyntheticSource(start=start)
    assert source.name == "DeltaSol MX"
    async with Emulator(channels={1: source}, offer_interval=None, speed=100) as emulator:
        client = await Client.open(emulator)
        await client.start()
        packets = [await client.frame() for _ in range(5 * 12)]
        await client.close()
    assert [(p.source, len(p.frame_data) // 4) for p in packets[:5]] == [
        (0x7E11, 25),
        (0x7E12, 15),
        (0x7E21, 1),
        (0x7E31, 4),
        (0x7E32, 4),
    ]
    controllers = [decoded(p) for p in packets if p.source == MX]
    first, last = controllers[0], controllers[-1]
    temperatures = [round(first[f"{2 * i:03d}_2_0"], 1) for i in range(15)]
    assert temperatures[6:] == [NO_SENSOR] * 9
    assert all(-20 < t < 100 for t in temperatures[:6])
    assert [round(c["000_2_0"], 1) for c in controllers] != [temperatures[0]] * len(controllers)
    assert 30 <= first["076_1_0"] <= 100
    assert first["092_4_0"] == (start - datetime(2001, 1, 1, tzinfo=UTC)).total_seconds()
    assert last["092_4_0"] == first["092_4_0"] + len(controllers) - 1
    assert first["096_4_0"] == 0
    hqm = [decoded(p) for p in packets if p.source == 0x7E31]
    assert hqm[-1]["000_4_0"] > hqm[0]["000_4_0"] >= 5_020_902
    assert hqm[0]["004_4_0"] == first["076_1_0"] * 35
    module = decoded(next(p for p in packets if p.source == 0x7E12))
    assert round(module["000_2_0"], 1) != temperatures[0]


def test_synthetic_generic_controller_and_unknown_address() -> None:
    simulated = SyntheticSource(0x0053, start=datetime(2001, 1, 8, 1, 30, tzinfo=UTC))  # a Monday
    cycles = simulated.cycles()
    values = decoded(decode_one(next(cycles).units[0]))
    assert round(values["012_4_0"], 3) == 12.0  # the current sensor waves around 12 mA
    assert values["080_4_0"] >= 5_020_902
    week = decoded(decode_one(next(SyntheticSource(0x2231).cycles()).units[0]))  # Weektime
    time = decoded(decode_one(next(SyntheticSource(0x1041).cycles()).units[0]))  # Time
    assert len(week) > 1
    assert len(time) > 1
    with pytest.raises(EmulatorError, match="0x0001"):
        SyntheticSource(0x0001)


def decode_one(wire: bytes) -> Frame:
    frames = StreamReceiver().feed(wire)
    assert len(frames) == 1
    return frames[0]


def test_simulation_clock_kinds() -> None:
    sim = _Simulation(datetime(2001, 1, 9, 2, 5, tzinfo=UTC))  # a Tuesday
    assert sim.value("Time", 0) == 125
    assert sim.value("WeekTime", 0) == 1440 + 125
    assert sim.value("DateTime", 0) == 8 * 86400 + 125 * 60
    assert sim.value("Volts", 0) == 0
    assert sim.value("Watts", 1) == 0
    assert sim.value("Percent", 5) == 0
    assert sim.value("Liters", 0) == 502_090


def test_resolve_controller_by_name_or_address() -> None:
    assert resolve_controller("7E11") == MX
    assert resolve_controller("0x7e11") == MX
    assert resolve_controller("DeltaSol MX") == MX
    assert resolve_controller("deltasol-mx") == MX
    assert resolve_controller("DeltaSol MX [Modules]") == 0x7E12
    assert resolve_controller("DeltaSol C") == 0x4212
    with pytest.raises(EmulatorError, match="unknown controller 'Nonexistent'"):
        resolve_controller("Nonexistent")


# -- bus master and parameterization ------------------------------------------------------------

# RESOL's exchange with a DeltaSol MX 2.08 (vbus-parameterization.md §7): (direction, bytes).
SECTION_7 = [
    ("RX", "AA 00 00 11 7E 20 00 05 00 00 00 00 00 00 00 4B"),
    ("TX", "AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D"),
    ("RX", "AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32"),
    ("TX", "AA 11 7E 20 00 20 00 11 00 00 19 6A 04 2D 18 53"),
    ("RX", "AA 20 00 11 7E 20 01 11 39 07 19 6A 04 2D 19 11"),
    ("TX", "AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D"),
    ("RX", "AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32"),
    ("TX", "AA 11 7E 20 00 20 00 02 39 07 02 00 00 00 01 6B"),
    ("RX", "AA 20 00 11 7E 20 00 01 39 07 02 00 00 00 01 6C"),
    ("TX", "AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D"),
    ("RX", "AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32"),
    ("TX", "AA 11 7E 20 00 20 00 03 39 07 00 00 00 00 01 6C"),
    ("RX", "AA 20 00 11 7E 20 00 01 39 07 02 00 00 00 01 6C"),
    ("TX", "AA 11 7E 20 00 20 00 06 00 00 00 00 00 00 00 2A"),
]


async def test_section_7_exchange_is_byte_exact() -> None:
    async with Emulator(offer_interval=0.05, speed=20) as emulator:
        controller = emulator.controller()
        controller.store["Relais_Regler_R1_Handbetrieb"].value = 0
        client = await Client.open(emulator)
        await client.start()
        offer = await client.frame(is_offer)
        assert offer.encode() == bytes.fromhex(SECTION_7[0][1])
        assert bytes.fromhex(SECTION_7[0][1]) in client.data
        for (_tx, sent), (rx, expected) in zip(SECTION_7[1::2], SECTION_7[2::2], strict=False):
            assert rx == "RX"
            start = len(client.data)
            client.writer.write(bytes.fromhex(sent))
            reply = await client.frame(is_answer)
            assert reply.encode() == bytes.fromhex(expected)
            assert bytes.fromhex(expected) in client.data[start:]
        assert controller.store["Relais_Regler_R1_Handbetrieb"].value == 2
        assert controller.store.writes == [(R1_INDEX, 2)]
        client.writer.write(bytes.fromhex(SECTION_7[-1][1]))
        await within(controller.wait_for_master(None))
        confirmation = await client.frame(lambda frame: not is_offer(frame))
        assert isinstance(confirmation, Packet)  # no answer to 0600: the next v1 packet
        assert confirmation.source == MX
        await client.close()


async def test_bus_is_taken_only_within_the_offer_window() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        client.send(request(0x0300))  # no offer yet
        await within(controller.wait_for_received(1))
        assert (controller.ignored, controller.master) == (1, None)
        assert controller.offer_bus()
        await client.frame(is_offer)
        controller._offered_at -= 0.5  # half a second later: the 0.4 s window has closed
        client.send(request(0x0300))
        await within(controller.wait_for_received(2))
        assert (controller.ignored, controller.master) == (2, None)
        controller.offer_bus()
        client.send(request(0x0300, 0, 0, source=0x0030))  # the first device wins the bus
        assert await client.frame(is_offer)
        await within(controller.wait_for_master(0x0030))
        assert not controller.offer_bus()  # no offers while another master holds the bus
        client.send(request(0x0300))  # a device that does not hold the bus is ignored
        await within(controller.wait_for_received(4))
        assert controller.ignored == 3
        client.send(request(0x0600, source=0x0030))
        await within(controller.wait_for_master(None))
        assert controller.offers == 2
        assert [d.source for d in controller.received] == [SELF, SELF, 0x0030, SELF, 0x0030]
        assert answer(0x0100, 0, MX_CHANGESET).encode() not in client.data  # nothing for SELF
        await client.close()


async def test_controller_is_silent_while_another_master_holds_the_bus_until_the_timeout() -> None:
    async with Emulator(offer_interval=0.02, bus_timeout=0.3, speed=50) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        taken = asyncio.get_running_loop().time()
        # Every frame after the answer must have been sent after the controller took the bus
        # back: neither live packets nor offers while 0020 was master. Offers and the first
        # packets may then come in either order.
        while not isinstance(frame := await client.frame(), Packet):
            assert is_offer(frame)
            assert controller.master is None
        assert controller.master is None
        assert asyncio.get_running_loop().time() - taken >= 0.25
        assert frame.source == MX
        await client.close()


async def test_release_by_0600_sends_the_next_packets_at_once() -> None:
    # One cycle per 100 s: only the release can make the controller send packets now.
    async with Emulator(offer_interval=0.02, speed=0.01) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        client.send(request(0x0600))
        confirmation = await client.frame(lambda frame: not is_offer(frame))
        assert isinstance(confirmation, Packet)
        assert controller.master is None
        await client.close()


async def test_clients_share_the_bus() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        first, second = await Client.open(emulator), await Client.open(emulator)
        await first.start()
        await second.start()
        await take_bus(first, controller)
        assert await second.frame(lambda f: is_answer(f) or f.destination == MX) == request(0x0300)
        assert await second.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        first.send(request(0x0300, R1_INDEX))
        assert await first.frame(is_answer) == answer(0x0100, R1_INDEX, 2)
        assert await second.frame() == request(0x0300, R1_INDEX)
        assert await second.frame() == answer(0x0100, R1_INDEX, 2)
        assert request(0x0300).encode() not in first.data  # the sender's frames are not echoed
        to_module = Datagram(0x7E12, SELF, 0x0300)  # another device's business
        first.send(to_module)
        assert await second.frame() == to_module
        assert controller.received_total == 2
        await first.close()
        await second.close()


async def test_writes_are_clamped_and_unknown_indices_refused() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        exchanges = [
            (request(0x0200, R1_INDEX, 9), answer(0x0100, R1_INDEX, 4)),
            (request(0x0400, R1_INDEX, -3), answer(0x0100, R1_INDEX, 0)),
            (request(0x0200, 13730, -500), answer(0x0100, 13730, -200)),  # negative limits
            (request(0x0200, 3591, 700), answer(0x0100, 3591, 700)),
            (request(0x0300, 3591), answer(0x0100, 3591, 700)),
            (request(0x0300, 1234), answer(0x4300, 1234)),
            (request(0x0200, 1234, 1), answer(0x4300, 1234)),
            (request(0x0305, R1_INDEX), answer(0x4305, R1_INDEX)),  # no sub-indices
            (request(0x0200, 0, 5), answer(0x0100, 0, MX_CHANGESET)),  # changeset is read-only
            (request(0x1000, R1_INDEX), answer(0x0100, R1_INDEX, R1_HASH)),
            (request(0x1000, 0), answer(0x0100, 0, 0)),
            (request(0x1000, 4321), answer(0x4300, 4321)),
            (request(0x1100, 0, R1_HASH), answer(0x1101, R1_INDEX, R1_HASH)),
        ]
        for sent, expected in exchanges:
            client.send(sent)
            assert await client.frame(is_answer) == expected
        # An unknown hash gets no answer; the resynchronising read is answered next.
        client.send(request(0x1100, 0, 12345), request(0x1300), request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        controller.lookup_answer_command = 0x0100
        client.send(request(0x1100, 0, R1_HASH))
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, R1_HASH)
        assert controller.store.writes == [
            (R1_INDEX, 9),
            (R1_INDEX, -3),
            (13730, -500),
            (3591, 700),
        ]
        await client.close()


async def test_late_answers_reproduce_the_mis_association_scenario() -> None:
    faults = Faults()
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        controller = emulator.controller()
        controller.lookup_answer_command = 0x0100
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        lookup = request(0x1100, 0, R1_HASH)
        faults.answer_delay = 0.1
        client.send(lookup)  # L1: the controller is "busy"
        await within(controller.wait_for_received(2))
        faults.answer_delay = 0.4  # even busier: L2's answer will come after R was sent
        client.send(lookup)  # L2: the client's retry
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, R1_HASH)  # L1's answer
        assert client.frames == []  # L2's answer has not arrived yet
        client.send(request(0x0300, R1_INDEX))  # R
        # The next answer belongs to L2 but has R's command and index: a naive client takes
        # the hash for the value of index 1977 (vbus-parameterization.md §6).
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, R1_HASH)
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, 2)  # R, too late
        faults.answer_delay = 0
        faults.duplicate_answers = True
        client.send(request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        faults.duplicate_answers = False
        faults.drop_answers = 1
        client.send(request(0x0300, R1_INDEX), request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        assert faults.drop_answers == 0
        await client.close()


async def test_changeset_changes_at_runtime() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        controller.store.firmware_update(0x12345678, index_shift=10)
        client.send(request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, 0x12345678)
        client.send(request(0x1100, 0, R1_HASH))
        assert await client.frame(is_answer) == answer(0x1101, R1_INDEX + 10, R1_HASH)
        client.send(request(0x0300, R1_INDEX))
        assert await client.frame(is_answer) == answer(0x4300, R1_INDEX)
        controller.store.changeset = 0x9ABCDEF0  # above 0x7FFFFFFF: sent as a signed p32
        client.send(request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, 0x9ABCDEF0 - (1 << 32))
        await client.close()


async def test_never_offer_bus_and_offer_loop() -> None:
    faults = Faults(never_offer_bus=True)
    async with Emulator(offer_interval=0.01, faults=faults, channels=static(P1)) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        assert not controller.offer_bus()
        await within(controller.wait_for_withheld(3))  # the one above, then two of the loop
        assert (controller.offers, controller.withheld) == (0, 3)
        faults.never_offer_bus = False
        await within(controller.wait_for_offers(3))
        assert is_offer(await client.frame(is_offer))
        await client.close()


async def test_every_datagram_from_the_master_restarts_the_bus_timeout() -> None:
    async with Emulator(channels=static(P1), offer_interval=None, bus_timeout=0.2) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        assert controller._release_timer is not None
        deadline = controller._release_timer.when()
        client.send(request(0x0300, source=0x0030))  # not the master: no effect on the timer
        await within(controller.wait_for_received(2))
        assert controller._release_timer.when() == deadline
        client.send(request(0x0300))
        await client.frame(is_answer)
        assert controller._release_timer.when() > deadline
        await within(controller.wait_for_master(None))
        assert controller._release_timer is None
        await client.close()


def test_controller_simulator_standalone_defaults() -> None:
    controller = ControllerSimulator(0x4212)
    assert controller.store.changeset == zlib.crc32(b"4212") & 0x7FFFFFFF
    # Every catalog value of the DeltaSol C, added after index 20000.
    catalog = catalog_for(0x4212)
    assert catalog is not None
    assert len(controller.store) == len(catalog.values) == 16
    assert controller.store.index_of(catalog.values[0].id_hash) == 20001
    controller.send((b"ignored",))
    controller.on_release()
    controller.release_bus()  # not held: nothing happens
    assert controller.master is None


# -- connection faults, reboot, stop ------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        # The frame holding byte 30 is still sent whole...
        (Faults(drop_after_bytes=30), P1.encode() + P2.encode()),
        (Faults(drop_after_bytes=22), P1.encode()),
        # ...unless the close is to cut a frame: then exactly 30 bytes.
        (Faults(drop_after_bytes=30, cut_mid_frame=True), (P1.encode() + P2.encode())[:30]),
    ],
)
async def test_drop_after_bytes(faults: Faults, expected: bytes) -> None:
    async with Emulator(channels=static(P1, P2), offer_interval=None, faults=faults) as emulator:
        client = await Client.open(emulator)
        await client.start()
        assert await client.eof() == expected
        assert client.receiver.buffered == len(expected) - 22 * len(client.frames)
        await client.close()


async def test_hard_close_resets_the_connection() -> None:
    faults = Faults(drop_after_bytes=1, hard_close=True)
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        client = await Client.open(emulator)
        with pytest.raises(ConnectionResetError):  # noqa: PT012 - the reset may hit either
            await client.start()
            await client.eof()
        await client.close()


async def test_corrupt_every_nth_data_byte() -> None:
    faults = Faults(corrupt_every=7)
    async with Emulator(channels=static(P1, P2), offer_interval=None, faults=faults) as emulator:
        client = await Client.open(emulator)
        await client.start()
        wire = bytearray(P1.encode() + P2.encode())
        for position in range(6, len(wire), 7):
            wire[position] ^= 0x01
        while len(client.data) < len(wire):
            await client.read()
        assert bytes(client.data) == bytes(wire)
        assert client.frames == []
        assert client.receiver.stats.frames == 0
        await client.close()


async def test_silent_sends_nothing_but_keeps_the_connection() -> None:
    faults = Faults(silent=True)
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await within(emulator.wait_connections(1))
        faults.silent = False
        assert await client.command("PASS vbus") == OK_PASS  # the greeting never came
        assert await client.command("DATA") == OK_DATA
        assert await client.frame() == P1
        faults.silent = True
        assert controller.offer_bus()  # lost
        faults.silent = False
        assert controller.offer_bus()
        assert await client.read() == Datagram(0, MX, 0x0500).encode()
        assert controller.offers == 2
        assert emulator.connections == 1
        await client.close()


async def test_reboot_closes_connections_and_greets_again() -> None:
    faults = Faults(cut_mid_frame=True)
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        streaming, idle = await Client.open(emulator), await Client.open(emulator)
        await streaming.start()
        await idle.line()
        assert await streaming.frame() == P1
        await emulator.reboot()
        assert await streaming.eof() == P1.encode()[:11]  # a frame cut in the middle
        assert streaming.receiver.buffered == 11
        assert await idle.eof() == b""
        assert emulator.connections == 0
        assert emulator.reboots == 1
        again = await Client.open(emulator)
        assert (await again.line()).startswith(b"+HELLO ")
        task = asyncio.create_task(emulator.reboot(downtime=0.2))
        await within(emulator.wait_connections(0))
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", emulator.port)
        await task
        after = await Client.open(emulator)
        assert (await after.line()).startswith(b"+HELLO ")
        for client in (streaming, idle, again, after):
            await client.close()


async def test_slow_clients_lose_data_instead_of_growing_the_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        client = await Client.open(emulator)
        await client.start()
        assert await client.frame() == P1
        with monkeypatch.context() as patch:
            patch.setattr(emulator_module, "_HIGH_WATER", -1)  # every client is "behind"
            assert emulator.controller().offer_bus()  # lost for this client
        assert emulator.controller().offer_bus()
        assert await client.read() == Datagram(0, MX, 0x0500).encode()
        await client.close()


async def test_stop_closes_everything_and_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    emulator = Emulator(offer_interval=0.01, faults=Faults(answer_delay=30), speed=10)
    await emulator.start()
    streaming, idle = await Client.open(emulator), await Client.open(emulator)
    await streaming.start()
    await idle.line()
    controller = emulator.controller()
    await streaming.frame(is_offer)
    streaming.send(request(0x0300))  # its answer is scheduled 30 s later
    await within(controller.wait_for_master(SELF))
    await emulator.stop()
    assert await streaming.eof() is not None
    assert await idle.eof() == b""
    assert asyncio.all_tasks() == before
    assert emulator.connections == 0
    for client in (streaming, idle):
        await client.close()
    with pytest.raises(OSError):  # noqa: PT011 - refused, whatever errno the OS uses
        await asyncio.open_connection("127.0.0.1", emulator.port)


async def test_connections_arriving_during_stop_are_closed_at_once() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        emulator._stopping = True  # as between stop() closing the server and the handlers
        client = await Client.open(emulator)
        assert await client.eof() == b""
        assert emulator.connections == 0
        await client.close()


async def test_faults_can_be_replaced_at_runtime() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        emulator.faults = Faults(never_offer_bus=True)
        assert emulator.controller().faults is emulator.faults
        assert not emulator.controller().offer_bus()


# -- parameter store ----------------------------------------------------------------------------

VALUE_LIST = {
    "controller": "test-controller",
    "deviceAddress": "0x4212",
    "values": [
        {
            "id": "Handbetrieb1",
            "index": 38,
            "idHash": 1887930473,
            "type": {
                "rootTypeId": "Tristate",
                "defaults": "1",
                "valueTexts": [{"value": v} for v in (0, 1, 2)],
            },
        },
        {
            "id": "TSp1Max",
            "index": 432,
            "type": {"storeFactors": "0,1", "minimums": "4", "maximums": "95", "defaults": "60"},
        },
        {
            "id": "Proxy",
            "index": 10,
            "storage": "abstract",
            "type": {"rootTypeId": "TemperatureProxy"},
        },
        {
            "id": "Proxy_F",
            "index": 12,
            "compoundValueRef": "Proxy",
            "type": {"minimums": "40", "maximums": "204"},
        },
        {
            "id": "Proxy_C",
            "index": 11,
            "compoundValueRef": "Proxy",
            "type": {
                "storeFactors": "0.1",
                "minimums": "4",
                "maximums": "95",
                "defaults": "40",
                "valueTexts": [{"value": "999.9"}],
            },
        },
        {
            "id": "Start",
            "index": 20,
            "type": {"minimums": "00:00", "maximums": "23:30", "defaults": "20:00"},
        },
        {
            "id": "Timer",
            "index": 21,
            "type": {"minimums": "Mo,00:00", "maximums": "So,23:59", "defaults": "So,22:00"},
        },
        {
            "id": "Enum",
            "index": 22,
            "type": {"defaults": "7", "valueTexts": [{"id": "a"}, {"id": "b"}, {"id": "c"}, "x"]},
        },
        {"id": "Blob", "index": 23, "type": {"rootTypeId": "Blob", "size": 4}},
        {"id": "Odd", "index": 24, "type": {"minimums": "x", "maximums": True, "defaults": "1:xx"}},
        {"id": "Changeset", "index": 0, "type": {}},
        "not a value",
    ],
}


def test_parameter_store_from_a_value_list() -> None:
    store = ParameterStore.from_controller_values(json.dumps(VALUE_LIST))
    assert store.changeset == zlib.crc32(b"test-controller") & 0x7FFFFFFF
    assert store.address == 0x4212
    expected = {
        "Handbetrieb1": StoredValue(38, 1, "Handbetrieb1", 1887930473, 0, 2),
        "TSp1Max": StoredValue(432, 600, "TSp1Max", None, 40, 950),
        "Proxy": StoredValue(10, 400, "Proxy", None, 40, 950),
        "Proxy_C": StoredValue(11, 400, "Proxy_C", None, 40, 950),
        "Start": StoredValue(20, 1200, "Start", None, 0, 1410),
        "Timer": StoredValue(21, 9960, "Timer", None, 0, 10079),
        "Enum": StoredValue(22, 2, "Enum", None, 0, 2),
        "Blob": StoredValue(23, 0, "Blob", None, None, None),
        "Odd": StoredValue(24, 0, "Odd", None, None, None),
    }
    for value_id, value in expected.items():
        assert store[value_id] == value
    assert len(store) == 10
    assert store.read(0) == store.changeset
    assert store.read(99) is None
    assert store.write(99, 1) is None
    assert store.index_of(1887930473) == 38
    assert store.hash_of(432) == 0
    assert store.hash_of(99) is None
    assert store.entry(38) is store["Handbetrieb1"]
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        store.add(StoredValue(0, 1))
    assert ParameterStore.from_controller_values(b'{"values": []}', changeset=7).changeset == 7
    for bad in (
        b"[]",
        b"{",
        b'{"values": [{"index": 1}]}',
        b'{"values": [{"id": "a", "index": "x"}]}',
    ):
        with pytest.raises(EmulatorError, match="invalid controller value list"):
            ParameterStore.from_controller_values(bad)


def test_default_mx_store_matches_the_mx_2xx_value_list() -> None:
    path = reference_file("controller-values", "resol-deltasol-mx-2xx.json")
    loaded = ParameterStore.from_controller_values(path.read_bytes())
    assert loaded.changeset == MX_CHANGESET
    assert loaded.address == MX
    assert len(loaded) == 8888
    default = ParameterStore.deltasol_mx()
    assert len(default) == 13
    for value_id in (
        "AutoSommerWinterzeit",
        "Systemzeit",
        "Relais_Regler_R1_Handbetrieb",
        "Relais_Regler_R2_Handbetrieb",
        "Solar_Sp1_Tmax",
        "Solar_Urlaubsfunktion_Kuehlung",
        "Solar_Urlaubsfunktion_TSp1Max",
        "Heizung_Wf1_ThBwErwaermung_TEin",
        "Heizung_Wf1_ThBwErwaermung_TAus",
        "Heizung_Heizkreis1_dTNachtkorrektur",
        "Heizung_Heizkreis1_Betriebsart",
        "Heizung_Heizkreis1_OUrlaub",
        "Urlaubsfunktion_Tage",
    ):
        mine, theirs = default[value_id], loaded[value_id]
        assert (mine.index, mine.id_hash, mine.minimum, mine.maximum) == (
            theirs.index,
            theirs.id_hash,
            theirs.minimum,
            theirs.maximum,
        ), value_id
    assert loaded["Relais_Regler_R1_Handbetrieb"].value == 2
    assert loaded["Solar_Sp1_dTaus"].minimum == 5  # HysteresisProxy: limits of the _K child


# -- command line -------------------------------------------------------------------------------


def emulate_args(*argv: str):
    return build_parser().parse_args(["emulate", *argv])


def test_build_emulator_from_options(tmp_path: Path) -> None:
    values = tmp_path / "values.json"
    values.write_text(json.dumps(VALUE_LIST))
    emulator = build_emulator(
        emulate_args(
            "--personality", "vbusnet", "--via-tag", "a", "--via-tag", "b", "--port", "0",
            "--values", str(values), "--offer-interval", "0", "--speed", "3", "--bus-timeout", "2",
            "--drop-after-bytes", "5", "--cut-mid-frame", "--silent", "--corrupt-every", "9",
            "--refuse-password", "--never-offer-bus", "--answer-delay", "0.5",
            "--drop-answers", "2", "--duplicate-answers", "--discovery-port", "0",
            "--http-port", "0", "--password", "pw", "--reject-channel", "--reject-data",
            "--hard-close",
        )
    )  # fmt: skip
    assert emulator.personality == Personality.VBUSNET
    assert emulator.via_tags == ("a", "b")
    assert emulator.faults == Faults(
        drop_after_bytes=5,
        cut_mid_frame=True,
        silent=True,
        corrupt_every=9,
        refuse_password=True,
        answer_delay=0.5,
        drop_answers=2,
        duplicate_answers=True,
        never_offer_bus=True,
        reject_channel=True,
        reject_data=True,
        hard_close=True,
    )
    assert build_emulator(emulate_args()).faults == Faults()
    controller = emulator.controller()
    assert controller.address == 0x4212  # from the value list's deviceAddress
    assert controller.store["TSp1Max"].value == 600
    assert (controller.offer_interval, controller.bus_timeout, emulator.speed) == (None, 2, 3)
    assert (emulator.discovery_port, emulator.http_port, emulator.password) == (0, 0, "pw")
    assert build_emulator(emulate_args("--controller", "DeltaSol C")).controller().address == 0x4212
    live = tmp_path / "live.bin"
    live.write_bytes(P1.encode())
    assert build_emulator(emulate_args("--live", str(live))).controller().address == MX
    default = build_emulator(emulate_args("--personality", "dl3"))
    assert default.channel_names == {1: "DeltaSol MX"}
    assert default.describe() == "emulating dl3 on 127.0.0.1:7053 (password vbus)"


def test_build_emulator_from_a_recording() -> None:
    path = reference_file("recordings", RECORDINGS[0])
    dl3 = build_emulator(emulate_args("--personality", "dl3", "--recording", str(path)))
    assert dl3.channel_names == {1: "DeltaSol MX"}
    assert sorted(dl3.controllers) == [1]
    dl2 = build_emulator(emulate_args("--recording", str(path)))
    assert dl2.controller().address == MX


def test_emulate_serial_names_the_listening_address() -> None:
    assert cli_serial(Personality.DL3, "127.0.0.1", 7053) == "001E66011B8D"
    assert cli_serial(Personality.KM2, "127.0.0.2", 7054) == "A84041021B8E"  # KM2s: their OUI
    assert cli_serial(Personality.DL2, "::1", 80) == "001E66010050"
    assert len(cli_serial(Personality.LAN, "localhost", 7053)) == 12
    assert build_emulator(emulate_args("--personality", "dl3")).information.serial == (
        "001E66011B8D"
    )
    assert build_emulator(emulate_args("--host", "127.0.0.2")).information.serial == (
        "001E66021B8D"
    )
    explicit = build_emulator(emulate_args("--serial", "001E66E7A003"))
    assert explicit.information.serial == "001E66E7A003"
    assert explicit.greeting == "This is DL2-001E66E7A003, at your service!"
    assert build_emulator(emulate_args("--http-port", "off")).http_port is None


async def test_default_emulators_differ_in_serial_and_information_port() -> None:
    # Home Assistant tells devices apart by the serial in their device information, so two
    # emulators on one machine (scripts/develop and one more, say) must not share either. Only
    # --port 0 differs from the defaults: the default TCP port 7053 may be taken by a demo.
    first = build_emulator(emulate_args("--port", "0"))
    async with first:
        second = build_emulator(emulate_args("--port", "0"))
        async with second:
            emulators = (first, second)
            serials = [emulator.information.serial for emulator in emulators]
            assert serials == [
                cli_serial(Personality.DL2, "127.0.0.1", emulator.port) for emulator in emulators
            ]
            assert serials[0] != serials[1]
            assert first.http_port is not None
            assert second.http_port is not None
            assert first.http_port != second.http_port
            for emulator in emulators:
                information = await fetch_device_information(
                    "127.0.0.1", (emulator.http_port,), TIMEOUT
                )
                assert information is not None
                assert information.serial == emulator.information.serial


class _Flushed(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushed = asyncio.Event()

    def flush(self) -> None:
        self.flushed.set()


async def test_serve_prints_where_it_listens_and_stops_cleanly() -> None:
    emulator = build_emulator(
        emulate_args(
            "--port", "0", "--personality", "dl3", "--discovery-port", "0", "--http-port", "0"
        )
    )
    out = _Flushed()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(emulator, out, stop))
    async with asyncio.timeout(TIMEOUT):
        await out.flushed.wait()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"emulating dl3 on 127.0.0.1:{emulator.port} (password vbus)"
    assert lines[1:] == [
        "  channel 1: DeltaSol MX",
        f"  discovery: UDP 127.0.0.1:{emulator.discovery_port}",
        f"  device information: HTTP 127.0.0.1:{emulator.http_port}",
    ]
    client = await Client.open(emulator)
    assert (await client.line()).startswith(b"+HELLO ")
    stop.set()
    assert await task == 0
    assert await client.eof() == b""
    await client.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_emulate_command_runs_until_signalled(signum: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "custom_components.resol_vbus.vbus",
        "emulate",
        "--port",
        "0",
        "--speed",
        "20",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode()
        match = re.fullmatch(r"emulating dl2 on 127\.0\.0\.1:(\d+) \(password vbus\)\n", first)
        assert match, first
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match[1]))
        client = Client(reader, writer)
        await client.start()
        assert isinstance(await client.frame(), Packet)
        process.send_signal(signum)
        async with asyncio.timeout(TIMEOUT):
            assert await process.wait() == 0
        await client.eof()
        await client.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
