"""A serial port that fails, in Home Assistant (issue 16): at setup, in the flow, under a write.

Every port is a real pseudo-terminal (the emulator's serial port, see tests/test_serial.py);
every wait is for an event (a state, a packet, a received datagram), bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_DEVICE, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from serialx import SerialPortInfo

from custom_components.resol_vbus import config_flow
from custom_components.resol_vbus.const import (
    CONF_CHANNEL,
    CONF_CONNECTION,
    CONNECTION_SERIAL,
    DOMAIN,
)
from custom_components.resol_vbus.vbus.emulator import Emulator, Faults, Personality, StaticSource
from custom_components.resol_vbus.vbus.protocol import Frame
from custom_components.resol_vbus.vbus.session import (
    ConnectionConfig,
    SessionState,
    VBusConnection,
    VBusSession,
    connect,
)

from .common import mx_controller, mx_heat_meter, wait_for_packets
from .vbus_lib.fakes import needs_pty

pytestmark = needs_pty

BOUND = 30.0  # a safety bound on a loaded machine, never a timing assumption


def _serial_entry(path: str) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"serial-{path}-0",
        data={CONF_CONNECTION: CONNECTION_SERIAL, CONF_DEVICE: path, CONF_CHANNEL: 0},
    )


@pytest.fixture
def no_ports() -> Iterator[list[SerialPortInfo]]:
    """The system lists no serial port (the pty never is)."""
    ports: list[SerialPortInfo] = []
    with patch.object(config_flow, "list_serial_ports", lambda: list(ports)):
        yield ports


@pytest.fixture
async def emulator(socket_enabled: None) -> AsyncIterator[Emulator]:
    """A DeltaSol MX and its heat quantity meter that resend their packets every 50 ms."""
    source = StaticSource(mx_controller(), mx_heat_meter(), interval=0.05)
    async with Emulator(
        personality=Personality.DL2, channels={1: source}, offer_interval=None, faults=Faults()
    ) as device:
        yield device


@pytest.fixture
def link(tmp_path: Path) -> str:
    """Where the emulator's port appears (not yet: the tests plug it in)."""
    return str(tmp_path / "ttyVBUS")


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines at ERROR or with a traceback (none may come from a failing port)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR or record.exc_info
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
    fast_reconnect: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not ready (with the reason), no traceback; once plugged in or freed it comes up itself."""
    holder: VBusConnection | None = None
    if kind == "busy":
        await emulator.open_serial(link)
        holder = await connect(ConnectionConfig(serial_port=link))  # another program has it
    entry = _serial_entry(link)
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


async def test_a_silent_port_at_setup_loads_and_shows_the_controller_once_it_sends(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    fast_reconnect: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An adapter without bus: the port opens, so the entry loads; the controller comes later."""
    emulator.faults.silent = True
    await emulator.open_serial(link)
    entry = _serial_entry(link)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    assert coordinator.packets == {}
    emulator.faults.silent = False
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
    fast_reconnect: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same port by its link and by its device node: the second says why it waits."""
    await emulator.open_serial(link)
    first = _serial_entry(link)
    first.add_to_hass(hass)
    assert await hass.config_entries.async_setup(first.entry_id)
    await wait_for_packets(first.runtime_data, 2)
    node = os.path.realpath(link)  # noqa: ASYNC240 - a symlink in tmp_path
    second = _serial_entry(node)
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


def _no_port(kind: str, tmp_path: Path) -> str:
    """A path of ``kind`` that is no serial port."""
    if kind == "directory":
        (tmp_path / "dir").mkdir()
        return str(tmp_path / "dir")
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return str(tmp_path / "fifo")
    if kind == "regular-file":
        (tmp_path / "capture.vbus").write_bytes(mx_controller().encode())
        return str(tmp_path / "capture.vbus")
    if kind == "dev-null":
        return os.devnull
    if kind == "dangling-symlink":
        (tmp_path / "ttyUSB0").symlink_to(tmp_path / "gone")
        return str(tmp_path / "ttyUSB0")
    if kind == "long-path":
        return "/dev/" + "/".join(["d" * 200] * 25)
    if kind == "spaces-and-unicode":
        return str(tmp_path / "VBus Adapter ä ✓")
    if kind == "root":
        return "/"
    if kind == "nul-byte":
        return "/dev/ttyUSB0\0"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "field", "reason"),
    [
        ("directory", "base", "serial_cannot_open"),
        ("fifo", "base", "serial_cannot_open"),
        ("regular-file", "base", "serial_cannot_open"),
        ("dev-null", "base", "serial_cannot_open"),
        ("dangling-symlink", "base", "serial_not_found"),
        ("long-path", "base", "serial_cannot_open"),
        ("spaces-and-unicode", "base", "serial_not_found"),
        ("root", "base", "serial_cannot_open"),
        ("nul-byte", CONF_DEVICE, "invalid_serial_port"),
    ],
)
async def test_a_path_that_is_no_serial_port_gets_a_form_error(
    hass: HomeAssistant,
    no_ports: list[SerialPortInfo],
    tmp_path: Path,
    kind: str,
    field: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A translated error at the field or the form, never "unknown", no traceback in the log."""
    flow_id = await _serial_form(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_DEVICE: _no_port(kind, tmp_path)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: reason}
    assert tracebacks(caplog) == []
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_a_port_with_spaces_and_unicode_in_its_path_is_added(
    hass: HomeAssistant,
    emulator: Emulator,
    no_ports: list[SerialPortInfo],
    tmp_path: Path,
    fast_reconnect: None,
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
    no_ports: list[SerialPortInfo],
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
