"""A serial port that fails, in Home Assistant (issue 16): at setup, in the flow, under a write.

Every port is a real pseudo-terminal (the emulator's serial port, see tests/test_serial.py);
every wait is for an event (a state, a packet, a received datagram), bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, CONF_DEVICE, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.resol_vbus.const import (
    CONNECTION_SERIAL,
    DOMAIN,
)
from custom_components.resol_vbus.coordinator import (
    MAX_DEVICES,
    MAX_ENTITIES,
    MAX_PACKET_KINDS,
    MAX_UNKNOWN_PACKETS,
)
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.protocol import CMD_SET, Frame
from custom_components.resol_vbus.vbus.session import (
    READ_SIZE,
    ConnectionConfig,
    SessionState,
    VBusConnection,
    VBusSession,
    connect,
)

from .common import (
    FAST,
    mx_controller,
    serial_entry,
    wait_for_packets,
    wait_for_state,
    wait_for_values,
    wait_until_read,
)
from .test_bounds import FLOODS, forge
from .vbus_lib.fakes import needs_pty, no_port_path

pytestmark = [needs_pty, pytest.mark.usefixtures("no_serial_ports", "fast_reconnect")]

RELAY_1 = "Relais_Regler_R1_Handbetrieb"
BOUND = 30.0  # a safety bound on a loaded machine, never a timing assumption


@pytest.fixture
def emulator(serial_emulator: Emulator) -> Emulator:
    """Packets resent, as a serial port needs them (see ``serial_emulator``)."""
    return serial_emulator


@pytest.fixture
def link(tmp_path: Path) -> str:
    """Where the emulator's port appears (not yet: the tests plug it in)."""
    return str(tmp_path / "ttyVBUS")


async def _plugged_in_and_set_up(
    hass: HomeAssistant, emulator: Emulator, link: str
) -> MockConfigEntry:
    """The emulator's port plugged in at ``link``, and an entry for it set up."""
    await emulator.open_serial(link)
    entry = serial_entry(link)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines at ERROR, or with a traceback above DEBUG (none may come from a failing port).

    Home Assistant 2026.10 logs the traceback of a setup that is not ready at DEBUG ("Full
    exception"), for whoever turns on debug logging: that is its own, and no complaint.
    """
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR or (record.exc_info and record.levelno > logging.DEBUG)
    ]


async def wait_for_frames(session: VBusSession, count: int) -> None:
    """Until ``session`` delivered ``count`` more frames."""
    frames: list[Frame] = []
    enough = asyncio.Event()

    def got(frame: Frame) -> None:
        frames.append(frame)
        if len(frames) >= count:
            enough.set()

    remove = session.subscribe(got)
    try:
        async with asyncio.timeout(BOUND):
            await enough.wait()
    finally:
        remove()


async def wait_for_entry_state(entry: MockConfigEntry, wanted: ConfigEntryState) -> None:
    """Until ``entry`` reaches ``wanted`` (a retried setup runs as a background task)."""
    reached = asyncio.Event()

    def check() -> None:
        if entry.state is wanted:
            reached.set()

    remove = entry.async_on_state_change(check)
    try:
        check()
        async with asyncio.timeout(BOUND):
            await reached.wait()
    finally:
        remove()


# -- setup: the port is missing, busy, silent --------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "busy"])
async def test_setup_retries_until_the_port_is_there_and_free(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not ready (with the reason), no traceback; once plugged in or freed it comes up itself."""
    holder: VBusConnection | None = None
    if kind == "busy":
        await emulator.open_serial(link)
        holder = await connect(ConnectionConfig(serial_port=link))  # another program has it
    entry = serial_entry(link)
    entry.add_to_hass(hass)
    with patch("custom_components.resol_vbus.coordinator.SETUP_TIMEOUT", 0.3):
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    reason = {
        "missing": "No such file or directory",
        "busy": f"Serial port '{link}' is already locked by another process",
    }[kind]
    assert entry.reason == (
        f"Could not connect to the VBus device: Cannot open the serial port {link}: {reason}"
    )
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("vbus session")]
    if holder is not None:
        await holder.close()
    else:
        await emulator.open_serial(link)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    await wait_for_entry_state(entry, ConfigEntryState.LOADED)
    await wait_for_packets(entry.runtime_data, 2)
    assert tracebacks(caplog) == []
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_silent_port_at_setup_is_not_ready_until_the_controller_sends(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An adapter without bus: the port opens, but only data counts as connected."""
    emulator.faults.silent = True
    await emulator.open_serial(link)
    entry = serial_entry(link)
    entry.add_to_hass(hass)
    # Nothing ever arrives while the fault holds: any bound ends in the same reason.
    with patch("custom_components.resol_vbus.coordinator.SETUP_TIMEOUT", 0.3):
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason == "Could not connect to the VBus device: no VBus data in 0.3 s"
    emulator.faults.silent = False
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    await wait_for_entry_state(entry, ConfigEntryState.LOADED)
    coordinator = entry.runtime_data
    await wait_for_packets(coordinator, 2)
    await hass.async_block_till_done()
    states = [
        hass.states.get(item.entity_id)
        for item in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    ]
    assert len(states) > 50
    assert STATE_UNAVAILABLE not in {state.state for state in states if state is not None}
    assert tracebacks(caplog) == []
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_second_entry_on_the_same_port_does_not_take_it(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same port by its link and by its device node: the second says why it waits."""
    first = await _plugged_in_and_set_up(hass, emulator, link)
    await wait_for_packets(first.runtime_data, 2)
    node = os.path.realpath(link)  # noqa: ASYNC240 - a symlink in tmp_path
    second = serial_entry(node)
    second.add_to_hass(hass)
    with patch("custom_components.resol_vbus.coordinator.SETUP_TIMEOUT", 0.3):
        assert not await hass.config_entries.async_setup(second.entry_id)
    assert second.state is ConfigEntryState.SETUP_RETRY
    assert second.reason == (
        "Could not connect to the VBus device: Cannot open the serial port "
        f"{node}: Serial port '{node}' is already locked by another process"
    )
    # The first keeps its port and its data.
    assert first.runtime_data.session.state is SessionState.CONNECTED
    assert first.runtime_data.session.connects == 1
    await wait_for_frames(first.runtime_data.session, 2)
    assert tracebacks(caplog) == []
    assert await hass.config_entries.async_unload(first.entry_id)
    assert await hass.config_entries.async_unload(second.entry_id)


# -- the config flow ----------------------------------------------------------------------------


async def _serial_form(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": CONNECTION_SERIAL}
    )
    assert result["step_id"] == CONNECTION_SERIAL
    return str(result["flow_id"])


@pytest.mark.parametrize(
    ("kind", "field", "reason"),
    [
        ("directory", "base", "serial_not_a_port"),
        ("fifo", "base", "serial_not_a_port"),
        ("regular-file", "base", "serial_not_a_port"),
        ("dev-null", "base", "serial_not_a_port"),
        ("dangling-symlink", "base", "serial_not_found"),
        ("long-path", "base", "serial_not_a_port"),
        ("spaces-and-unicode", "base", "serial_not_found"),
        ("root", "base", "serial_not_a_port"),
        ("nul-byte", CONF_DEVICE, "invalid_serial_port"),
    ],
)
async def test_a_path_that_is_no_serial_port_gets_a_form_error(
    hass: HomeAssistant,
    tmp_path: Path,
    kind: str,
    field: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A translated error at the field or the form, never "unknown", no traceback in the log."""
    flow_id = await _serial_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_DEVICE: no_port_path(kind, tmp_path)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: reason}
    assert tracebacks(caplog) == []
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_a_port_with_spaces_and_unicode_in_its_path_is_added(
    hass: HomeAssistant,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    path = await emulator.open_serial(tmp_path / "VBus Adapter ä ✓")
    flow_id = await _serial_form(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_DEVICE: path})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via Serial port VBus Adapter ä ✓"
    entry = result["result"]
    await hass.async_block_till_done()
    await wait_for_packets(entry.runtime_data, 2)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_unplugged_while_the_flow_waits_for_data(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The adapter is pulled during the flow's test: a form error, the port not held."""
    emulator.faults.silent = True  # no packet ends the test before the unplug
    await emulator.open_serial(link)
    flow_id = await _serial_form(hass)
    opened = asyncio.Event()
    import serialx  # noqa: PLC0415

    original = serialx.open_serial_connection

    async def open_and_tell(*args: Any, **kwargs: Any) -> Any:
        streams = await original(*args, **kwargs)
        opened.set()
        return streams

    with patch("serialx.open_serial_connection", open_and_tell):
        configure = asyncio.create_task(
            hass.config_entries.flow.async_configure(flow_id, {CONF_DEVICE: link})
        )
        async with asyncio.timeout(BOUND):
            await opened.wait()
        await emulator.close_serial()
        async with asyncio.timeout(BOUND):
            result = await configure
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "serial_not_found"}
    assert tracebacks(caplog) == []
    # The port is not held: plugged in again, the same flow takes it.
    emulator.faults.silent = False
    await emulator.open_serial(link)
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_DEVICE: link})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(result["result"].entry_id)


# -- a write, the port pulled between request and answer ---------------------------------------


@pytest.fixture
async def mx(socket_enabled: None) -> AsyncIterator[Emulator]:
    """A DeltaSol MX 2.x that resends its packet and offers the bus every 50 ms."""
    async with Emulator(
        personality=Personality.DL2,
        channels={1: StaticSource(mx_controller(), interval=0.05)},
        offer_interval=0.05,
    ) as device:
        yield device


def _settings(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Entity id → state of every enabled select of ``entry`` (the settings it reads)."""
    return {
        item.entity_id: hass.states.get(item.entity_id).state
        for item in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if item.domain == SELECT_DOMAIN and item.disabled_by is None
    }


async def test_unplugged_between_a_write_and_its_answer(
    hass: HomeAssistant,
    mx: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sent once, then the port goes: the write fails loudly; settings are read again after."""
    link = await mx.open_serial(tmp_path / "ttyVBUS")
    entry = serial_entry(link)
    entry.add_to_hass(hass)
    monkeypatch.setattr("custom_components.resol_vbus.coordinator.ENGINE_TIMING", FAST)
    assert await hass.config_entries.async_setup(entry.entry_id)
    values = await wait_for_values(hass, entry)
    relay = er.async_get(hass).async_get_entity_id(
        SELECT_DOMAIN, DOMAIN, f"serial-{link}-0_00_7E11_relay_1_manual_mode"
    )
    assert relay is not None
    assert STATE_UNAVAILABLE not in _settings(hass, entry).values()
    assert hass.states.get(relay).state == "auto"
    controller = mx.controller(1)
    # The bus stays granted to the vanished engine until the controller gives up on it: sooner
    # than the engine's offer timeout, as with the real timing (30 s), not FAST's 3 s.
    controller.bus_timeout = 0.5
    answer = controller._answer
    # The controller takes the write but its acknowledgement never comes ...
    monkeypatch.setattr(
        controller, "_answer", lambda r: None if r.command == CMD_SET else answer(r)
    )
    write = asyncio.create_task(
        hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "min"}, blocking=True
        )
    )
    async with asyncio.timeout(BOUND):
        while not any(datagram.command == CMD_SET for datagram in controller.received):
            await controller.wait_for_received(len(controller.received) + 1)
    session = entry.runtime_data.session
    await mx.close_serial()  # ... because the adapter is pulled
    with pytest.raises(HomeAssistantError) as excinfo:
        async with asyncio.timeout(BOUND):
            await write
    assert excinfo.value.translation_key == "connection_lost"

    def sets() -> int:
        return sum(datagram.command == CMD_SET for datagram in controller.received)

    assert sets() == 1  # sent exactly once
    await wait_for_state(session, SessionState.DISCONNECTED)  # it may have come first
    await hass.async_block_till_done()
    assert set(_settings(hass, entry).values()) == {STATE_UNAVAILABLE}
    monkeypatch.setattr(controller, "_answer", answer)
    await mx.open_serial(link)
    await wait_for_state(session, SessionState.CONNECTED)
    await wait_until_read(values)
    await hass.async_block_till_done()
    assert STATE_UNAVAILABLE not in _settings(hass, entry).values()
    # The write never took effect (the controller dropped it): what it holds, read again.
    assert controller.store[RELAY_1].value == 2
    assert hass.states.get(relay).state == "auto"
    assert sets() == 1  # not repeated behind the user's back
    assert await hass.config_entries.async_unload(entry.entry_id)


# -- a cut cable: the port open and silent -------------------------------------------------------


async def test_a_cut_cable_makes_the_entities_unavailable_and_reopens_the_port(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The watchdog (shortened; the library tests it on an injected clock) drops the port.

    The port opens again and again while the cable stays cut; that is no "connection restored":
    only data is. One log line when it is lost, one when data comes back.
    """
    caplog.set_level(logging.INFO, logger="custom_components.resol_vbus")
    await emulator.open_serial(link)
    entry = serial_entry(link)
    entry.add_to_hass(hass)
    with patch(
        "custom_components.resol_vbus.coordinator.VBusSession",
        functools.partial(VBusSession, watchdog_timeout=0.5),
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    session = coordinator.session
    await wait_for_packets(coordinator, 2)
    reasons: list[str] = []
    cycles = asyncio.Event()

    def disconnected(state: SessionState, reason: BaseException | None) -> None:
        if state == SessionState.DISCONNECTED:
            reasons.append(str(reason))
            if len(reasons) >= 3:  # dropped, reopened and dropped again, twice
                cycles.set()

    session.add_state_listener(disconnected)
    connected: list[bool] = []
    coordinator.async_add_listener(lambda: connected.append(coordinator.connected))
    emulator.faults.silent = True
    async with asyncio.timeout(BOUND):
        await cycles.wait()
    await hass.async_block_till_done()
    shown = {
        hass.states.get(item.entity_id).state
        for item in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if item.disabled_by is None and not item.unique_id.endswith("_connection")
    }
    assert shown == {STATE_UNAVAILABLE}
    assert reasons[:3] == ["No VBus data from the device for 0.5 s"] * 3
    assert session.connects >= 3  # the port was closed and opened again, twice at least
    assert True not in connected  # the connectivity sensor stayed off
    emulator.faults.silent = False  # the cable is mended
    await wait_for_frames(session, 2)
    await hass.async_block_till_done()
    assert coordinator.connected
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith(("Lost connection", "Connection to"))
    ]
    assert logged == [
        f"Lost connection to {link}: No VBus data from the device for 0.5 s",
        f"Connection to {link} restored",
    ]
    assert await hass.config_entries.async_unload(entry.entry_id)


# -- garbage and floods on the port -------------------------------------------------------------


def _forged() -> bytes:
    """Packets of twice as many kinds as an entry takes, from addresses a wildcard matches."""
    flood = FLOODS["any destination, one source"]
    packets = forge(random.Random(16), flood.templates, flood.count, own_sources=False)
    return b"".join(packet.encode() for packet in packets)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(random.Random(16).randbytes(1 << 20), id="random-1MB"),
        pytest.param(b"\xaa" * (1 << 16), id="sync-only"),
        pytest.param(
            bytes(b for b in random.Random(17).randbytes(1 << 17) if b != 0xAA), id="no-sync"
        ),
        pytest.param(_forged(), id="forged-addresses"),
    ],
)
async def test_garbage_on_the_port_keeps_the_entry_up_and_bounded(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    garbage: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No crash, no reconnect, the tables within their bounds, the loop free between reads."""
    entry = await _plugged_in_and_set_up(hass, emulator, link)
    coordinator = entry.runtime_data
    session = coordinator.session
    await wait_for_packets(coordinator, 2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)  # one event-loop iteration, not a wait for time

    ticker = asyncio.create_task(tick())
    port = emulator.serial_port
    assert port is not None
    target = session.stats.bytes + len(garbage)
    port.inject(garbage)
    arrived = asyncio.Event()
    remove = session.subscribe(lambda _f: session.stats.bytes >= target and arrived.set())
    async with asyncio.timeout(BOUND):
        await arrived.wait()
    remove()
    ticker.cancel()
    await hass.async_block_till_done()
    assert session.state is SessionState.CONNECTED
    assert session.connects == 1
    assert entry.state is ConfigEntryState.LOADED
    assert ticks >= len(garbage) // READ_SIZE  # the loop ran between the reads
    assert len(coordinator.packets) <= MAX_PACKET_KINDS
    assert len(coordinator.unknown_packets) <= MAX_UNKNOWN_PACKETS
    devices = {(key.channel, key.source) for key in coordinator.packets}
    assert len(devices) <= MAX_DEVICES
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert len(entities) <= MAX_ENTITIES + 10  # the adapter's own few besides the fields
    temperature = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"serial-{link}-0_00_0010_7E11_10_0100_000_2_0"
    )
    assert temperature is not None
    assert hass.states.get(temperature).state == "1.9"
    assert [m for m in tracebacks(caplog) if "resol_vbus" in m or "vbus" in m] == []
    assert await hass.config_entries.async_unload(entry.entry_id)


# -- leaks --------------------------------------------------------------------------------------


def _fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def _vbus_tasks() -> list[str]:
    return [
        task.get_name()
        for task in asyncio.all_tasks()
        if task.get_name().startswith(("vbus session", "vbus watchdog", "resol_vbus"))
    ]


async def test_unplug_cycles_and_reloads_leak_no_fd_and_no_task(
    hass: HomeAssistant, emulator: Emulator, link: str
) -> None:
    await emulator.open_serial(link)
    entry = serial_entry(link)
    entry.add_to_hass(hass)
    # Once set up and unloaded first: what Home Assistant opens only once is open then.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for_packets(entry.runtime_data, 2)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    fds = _fds()
    assert _vbus_tasks() == []

    assert await hass.config_entries.async_setup(entry.entry_id)
    for _ in range(10):
        session = entry.runtime_data.session
        await emulator.close_serial()
        await wait_for_state(session, SessionState.DISCONNECTED)
        await emulator.open_serial(link)
        await wait_for_frames(session, 2)
    for _ in range(5):
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        await wait_for_frames(entry.runtime_data.session, 2)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert _vbus_tasks() == []
    assert _fds() == fds  # the emulator's port is open both times: the same count
