"""Synthesized packets: sane, moving values; controllers by name or address."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from aiovbus.emulator import (
    NO_SENSOR,
    Emulator,
    SyntheticSource,
    resolve_controller,
)
from aiovbus.emulator.synthetic import _Simulation
from aiovbus.errors import EmulatorError
from aiovbus.protocol import Packet
from aiovbus.receiver import StreamReceiver
from aiovbus.specification import Specification

from .client import Client
from .common import MX

if TYPE_CHECKING:
    from aiovbus.protocol import Frame

pytestmark = pytest.mark.usefixtures("socket_enabled")


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
