"""Helpers for the Home Assistant tests: deterministic MX packets and entry data."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PASSWORD, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.const import (
    CONF_CHANNEL,
    CONF_CONNECTION,
    CONF_FIRMWARE,
    CONF_PRODUCT,
    CONF_SERIAL,
    CONNECTION_LOCAL,
    CONNECTION_SERIAL,
    DOMAIN,
)
from custom_components.resol_vbus.coordinator import STALE_MINIMUM
from custom_components.resol_vbus.vbus.parameters import OFFER_FRESH, Timing
from custom_components.resol_vbus.vbus.protocol import Packet
from custom_components.resol_vbus.vbus.recording import (
    HeaderSetStart,
    RecordedFrame,
    read_recording,
)
from custom_components.resol_vbus.vbus.session import SessionState, VBusSession
from custom_components.resol_vbus.vbus.specification import (
    FieldSpec,
    FieldType,
    Specification,
    Value,
)
from custom_components.resol_vbus.vbus.units import is_flag, is_sentinel

if TYPE_CHECKING:
    from homeassistant.helpers.device_registry import DeviceEntry

    from custom_components.resol_vbus.coordinator import ValuesCoordinator, VBusCoordinator
    from custom_components.resol_vbus.vbus.emulator import Emulator

REFERENCE_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "data"
SERIAL = "001E66E7A002"
UNIQUE_ID = f"{SERIAL}-0"


def encode(dst: int, src: int, command: int, length: int, values: dict[str, Value]) -> Packet:
    """A packet whose payload carries ``values`` (by field id), zeros elsewhere."""
    decoder = Specification.bundled().decoder(dst, src, command)
    assert decoder is not None
    payload = bytearray(length)
    for spec_field in decoder.fields:
        if spec_field.field_id in values:
            spec_field.encode_into(payload, values[spec_field.field_id])
    return Packet(dst, src, command, bytes(payload))


def mx_controller(overrides: dict[str, Value] | None = None) -> Packet:
    """A DeltaSol MX controller packet (25 frames, as the real one)."""
    values: dict[str, Value] = {
        "000_2_0": 1.9,  # Temperature sensor 1
        "002_2_0": 25.0,  # Temperature sensor 2
        "026_2_0": -888.8,  # Temperature sensor 14: no sensor connected
        "076_1_0": 100,  # Pump speed relay 1
        "092_4_0": 414032776,  # System date: 2014-02-14 01:06:16 (controller local time)
    }
    values.update(overrides or {})
    return encode(0x0010, 0x7E11, 0x0100, 100, values)


def mx_heat_meter(heat: int = 5020902) -> Packet:
    """A DeltaSol MX heat quantity meter packet (HQM #1)."""
    return encode(0x0010, 0x7E31, 0x0100, 16, {"000_4_0": heat})


def entry_data(port: int, **extra: object) -> dict[str, object]:
    """Config entry data for a local device on loopback."""
    return {
        CONF_CONNECTION: CONNECTION_LOCAL,
        CONF_HOST: "127.0.0.1",
        CONF_PORT: port,
        CONF_PASSWORD: "vbus",
        CONF_CHANNEL: 0,
        CONF_SERIAL: SERIAL,
        CONF_PRODUCT: "DL2",
        CONF_FIRMWARE: "2.2.0",
        **extra,
    }


def serial_entry(path: str) -> MockConfigEntry:
    """A config entry for the serial port ``path`` (not added to Home Assistant yet)."""
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"serial-{path}-0",
        data={CONF_CONNECTION: CONNECTION_SERIAL, CONF_DEVICE: path, CONF_CHANNEL: 0},
    )


def recording(name: str) -> bytes:
    """A reference recording (the test skips when ../shared is absent)."""
    path = REFERENCE_DATA / "recordings" / name
    if not path.is_file():
        pytest.skip(f"reference recording {name} not available (../shared is absent)")
    return path.read_bytes()


def header_sets(data: bytes) -> list[list[Packet]]:
    """The packets of a recording, grouped by header set."""
    sets: list[list[Packet]] = []
    for item in read_recording(data):
        if isinstance(item, HeaderSetStart):
            sets.append([])
        elif isinstance(item, RecordedFrame) and isinstance(item.frame, Packet) and sets:
            sets[-1].append(item.frame)
    return sets


async def wait_for_packets(coordinator: VBusCoordinator, count: int) -> None:
    """Wait until the coordinator knows ``count`` kinds of packets."""
    seen = asyncio.Event()

    def check(_packet: object) -> None:
        if len(coordinator.packets) >= count:
            seen.set()

    remove = coordinator.async_add_packet_callback(check)
    try:
        async with asyncio.timeout(10):
            await seen.wait()
    finally:
        remove()


def device(hass: HomeAssistant, entry_id: str, identifier: tuple[str, str]) -> DeviceEntry:
    """The device of ``entry_id`` with ``identifier`` (works on every supported release)."""
    found = [
        entry
        for entry in dr.async_entries_for_config_entry(dr.async_get(hass), entry_id)
        if identifier in entry.identifiers
    ]
    assert len(found) == 1, identifier
    return found[0]


FAST = Timing(offer=3, request=0.2, increment=0.1, release=0.3, deadline=15)


async def setup_values(
    hass: HomeAssistant, emulator: Emulator, *, port: int | None = None, **options: object
) -> ValuesCoordinator:
    """An entry for ``emulator`` (or a proxy in front of it at ``port``), its values read."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UNIQUE_ID,
        data=entry_data(port or emulator.port),
        options=options,
    )
    entry.add_to_hass(hass)
    with pytest.MonkeyPatch.context() as patcher:
        patcher.setattr("custom_components.resol_vbus.coordinator.ENGINE_TIMING", FAST)
        assert await hass.config_entries.async_setup(entry.entry_id)
        return await wait_for_values(hass, entry)


class ManualClock:
    """A clock that moves only when the test moves it (``now += seconds``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def take_over_live_data(coordinator: VBusCoordinator) -> ManualClock:
    """Stop the live data and give the coordinator a clock the test moves.

    The session stops, so no real frame can arrive between the test's clock jumps (the test
    feeds frames itself with ``coordinator._handle_frame``); the entities stay available. The
    clock starts at the real clock's present, so intervals measured before stay plausible.
    """
    await coordinator.session.stop()
    clock = ManualClock(coordinator._clock())
    coordinator._clock = clock
    return clock


def let_packets_go_stale(coordinator: VBusCoordinator) -> None:
    """Move the coordinator's clock past the stale limit: every packet kind it knows goes stale.

    The clock stays there, so packets handled afterwards count as sent again.
    """
    later = coordinator._clock() + STALE_MINIMUM + 1
    coordinator._clock = lambda: later
    coordinator._check_stale()


async def withhold_offers(emulator: Emulator) -> None:
    """Stop the controller's bus offers, and wait until the engine no longer counts the last one.

    The engine still takes an offer seen up to ``OFFER_FRESH`` seconds ago, so right after the
    fault is set the next operation could get the bus. Withheld offers come one per offer
    interval: two more than that span covers the delivery of an offer already on its way.
    """
    controller = emulator.controller(1)
    assert controller.offer_interval is not None
    emulator.faults.never_offer_bus = True
    count = controller.withheld + math.ceil(OFFER_FRESH / controller.offer_interval) + 2
    async with asyncio.timeout(10):
        await controller.wait_for_withheld(count)


async def wait_for_state(session: VBusSession, wanted: SessionState) -> None:
    """Until ``session`` reaches ``wanted`` (at most 10 s)."""
    reached = asyncio.Event()
    remove = session.add_state_listener(lambda state, _r: state == wanted and reached.set())
    try:
        async with asyncio.timeout(10):
            await reached.wait()
    finally:
        remove()


async def wait_for_values(hass: HomeAssistant, entry: MockConfigEntry) -> ValuesCoordinator:
    """The first controller whose values were read (the engine's timing is the caller's)."""
    ready = asyncio.Event()
    found: list[ValuesCoordinator] = []

    def added(values: ValuesCoordinator) -> None:
        found.append(values)
        values.async_add_listener(ready.set)
        if values.data is not None:
            ready.set()

    remove = entry.runtime_data.values.async_add_controller_callback(added)
    try:
        async with asyncio.timeout(15):
            await ready.wait()
    finally:
        remove()
    await hass.async_block_till_done()
    return found[0]


async def wait_until_read(values: ValuesCoordinator) -> None:
    """Until every value of ``values`` was read since they were last invalidated (at most 15 s)."""
    read = asyncio.Event()
    remove = values.async_add_listener(lambda: values.current and read.set())
    try:
        if not values.current:
            async with asyncio.timeout(15):
                await read.wait()
    finally:
        remove()


def shown(spec_field: FieldSpec, value: Value | None) -> object:
    """What an entity shows for a decoded value, worked out independently of the entity code.

    Flags show on/off, "no sensor" readings show unknown, numbers are rounded to their precision,
    everything else shows the raw value.
    """
    if value is None:
        return None
    if is_flag(spec_field):
        return value != 0
    if is_sentinel(spec_field, value):
        return None
    if spec_field.type == FieldType.NUMBER and spec_field.precision > 0:
        return round(value, spec_field.precision)
    return value
