"""A serial port in Home Assistant (issue 16): config flow, live data, a write, a vanishing port.

The emulator serves its channel on a pseudo-terminal behind a symlink, as udev's
``/dev/serial/by-id/…`` links point at a USB port: raw VBus bytes, no handshake, the controller's
bus offers and answers included. The tests set an entry up on it through the config flow and
compare what Home Assistant shows with an entry for the same emulated controller over TCP.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USB,
    SOURCE_USER,
    ConfigEntryState,
)
from homeassistant.const import ATTR_ENTITY_ID, CONF_DEVICE, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry
from serialx import SerialException, SerialPortInfo

from custom_components.resol_vbus import config_flow
from custom_components.resol_vbus.const import (
    CONF_CHANNEL,
    CONF_CONNECTION,
    CONF_PRODUCT,
    CONNECTION_SERIAL,
    DOMAIN,
)
from custom_components.resol_vbus.vbus.emulator import Emulator
from custom_components.resol_vbus.vbus.session import ConnectionConfig, SessionState, connect

from .common import (
    FAST,
    UNIQUE_ID,
    entry_data,
    serial_entry,
    wait_for_packets,
    wait_for_state,
    wait_for_values,
)
from .vbus_lib.fakes import needs_pty

RELAY_1 = "Relais_Regler_R1_Handbetrieb"

pytestmark = [needs_pty, pytest.mark.usefixtures("no_serial_ports", "fast_reconnect")]


@pytest.fixture
def emulator(serial_emulator: Emulator) -> Emulator:
    """Packets resent, as a serial port needs them (see ``serial_emulator``)."""
    return serial_emulator


@pytest.fixture
def mx(serial_mx: Emulator) -> Emulator:
    """The MX's packet resent, as a serial port needs it (see ``serial_mx``)."""
    return serial_mx


@pytest.fixture
async def link(emulator: Emulator, tmp_path: Path) -> AsyncIterator[str]:
    """The emulator's channel 1 on a pseudo-terminal, at a stable path (a symlink)."""
    path = await emulator.open_serial(tmp_path / "ttyVBUS", channel=1)
    yield path
    await emulator.close_serial()


async def _flow_to_serial_form(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert CONNECTION_SERIAL in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": CONNECTION_SERIAL}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == CONNECTION_SERIAL
    return result


async def _add_serial_entry(hass: HomeAssistant, path: str) -> MockConfigEntry:
    form = await _flow_to_serial_form(hass)
    result = await hass.config_entries.flow.async_configure(form["flow_id"], {CONF_DEVICE: path})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


def _states_by_key(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Every entity of ``entry``: its unique ID without the entry's prefix → its state."""
    registry = er.async_get(hass)
    prefix = entry.unique_id
    assert prefix is not None
    shown = {}
    for item in er.async_entries_for_config_entry(registry, entry.entry_id):
        assert item.unique_id.startswith(prefix), item.unique_id
        state = hass.states.get(item.entity_id)
        shown[item.unique_id.removeprefix(prefix)] = state.state if state else "disabled"
    return shown


async def test_a_serial_entry_shows_what_a_tcp_entry_shows(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
) -> None:
    """Set up through the config flow on the pty: the same entities and values as over TCP."""
    tcp = MockConfigEntry(domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(emulator.port))
    tcp.add_to_hass(hass)
    assert await hass.config_entries.async_setup(tcp.entry_id)
    serial = await _add_serial_entry(hass, link)

    assert serial.title == "DeltaSol MX via Serial port ttyVBUS"
    assert serial.unique_id == f"serial-{link}-0"
    assert serial.data == {CONF_CONNECTION: CONNECTION_SERIAL, CONF_DEVICE: link, CONF_CHANNEL: 0}
    await wait_for_packets(tcp.runtime_data, 2)
    await wait_for_packets(serial.runtime_data, 2)
    await hass.async_block_till_done()
    over_tcp, over_serial = _states_by_key(hass, tcp), _states_by_key(hass, serial)
    assert len(over_serial) > 50  # the MX controller and its heat quantity meter
    assert over_serial == over_tcp
    assert STATE_UNAVAILABLE not in over_serial.values()


async def test_relay_1_manual_mode_is_written_over_the_serial_port(
    hass: HomeAssistant, mx: Emulator, tmp_path: Path
) -> None:
    """The parameterization engine works unchanged over serial: the write reaches the store."""
    path = await mx.open_serial(tmp_path / "ttyVBUS")
    entry = serial_entry(path)
    entry.add_to_hass(hass)
    with patch("custom_components.resol_vbus.coordinator.ENGINE_TIMING", FAST):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_for_values(hass, entry)
        relay = er.async_get(hass).async_get_entity_id(
            SELECT_DOMAIN, DOMAIN, f"serial-{path}-0_00_7E11_relay_1_manual_mode"
        )
        assert relay is not None
        assert hass.states.get(relay).state == "auto"
        store = mx.controller(1).store
        await hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "min"}, blocking=True
        )
    assert store.writes == [(store[RELAY_1].index, 1)]
    assert store[RELAY_1].value == 1
    assert hass.states.get(relay).state == "min"
    await mx.close_serial()


async def test_the_entry_recovers_when_the_port_vanishes_and_returns(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
) -> None:
    """USB unplugged and plugged in again: unavailable, then back without anyone touching it."""
    entry = await _add_serial_entry(hass, link)
    coordinator = entry.runtime_data
    await wait_for_packets(coordinator, 2)
    await hass.async_block_till_done()
    before = _states_by_key(hass, entry)
    assert STATE_UNAVAILABLE not in before.values()

    await emulator.close_serial()
    await wait_for_state(coordinator.session, SessionState.DISCONNECTED)
    await hass.async_block_till_done()
    gone = _states_by_key(hass, entry)
    assert gone.pop("_connection") == "off"  # the adapter's connectivity sensor
    assert {state for state in gone.values() if state != "disabled"} == {STATE_UNAVAILABLE}
    assert entry.state is ConfigEntryState.LOADED  # retrying, not failed

    await emulator.open_serial(link)
    await wait_for_state(coordinator.session, SessionState.CONNECTED)
    await wait_for_packets(coordinator, 2)
    await hass.async_block_till_done()
    assert _states_by_key(hass, entry) == before


async def test_the_form_lists_stable_paths_first_and_stores_them(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    no_serial_ports: list[SerialPortInfo],
) -> None:
    """A port typed by its device node is stored by its stable path, known by its USB identity.

    The listed USB port stands for the pty: its device node is the pty's, its by-id path the link.
    """
    node = os.path.realpath(link)  # noqa: ASYNC240 - a symlink in tmp_path, no real I/O
    usb = SerialPortInfo(
        device=link,
        resolved_device=node,
        vid=0x0403,
        pid=0x6001,
        serial_number="A10K3B2F",
        manufacturer="FTDI",
        product="FT232R USB UART",
        bcd_device=0x0600,
        interface_description=None,
        interface_num=0,
    )
    uart = SerialPortInfo(
        device="/dev/ttyAMA0",
        resolved_device="/dev/ttyAMA0",
        vid=None,
        pid=None,
        serial_number=None,
        manufacturer=None,
        product=None,
        bcd_device=None,
        interface_description=None,
        interface_num=None,
    )
    no_serial_ports.extend([uart, usb])
    with patch.object(config_flow, "SERIAL_BY_ID", str(Path(link).parent) + "/"):
        form = await _flow_to_serial_form(hass)
        selector = form["data_schema"].schema[CONF_DEVICE].config
        assert selector["options"] == [
            {"value": link, "label": f"{link} (FTDI, FT232R USB UART, A10K3B2F)"},
            {"value": "/dev/ttyAMA0", "label": "/dev/ttyAMA0"},
        ]
        assert selector["custom_value"] is True
        result = await hass.config_entries.flow.async_configure(
            form["flow_id"], {CONF_DEVICE: node}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == "usb-0403:6001-A10K3B2F-0"
    assert entry.data == {
        CONF_CONNECTION: CONNECTION_SERIAL,
        CONF_DEVICE: link,
        CONF_PRODUCT: "FT232R USB UART",
        CONF_CHANNEL: 0,
    }
    assert entry.title == "DeltaSol MX via FT232R USB UART ttyVBUS"

    form = await _flow_to_serial_form(hass)
    result = await hass.config_entries.flow.async_configure(form["flow_id"], {CONF_DEVICE: link})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.fixture
def silent_pty(tmp_path: Path) -> Iterator[str]:
    """A serial port on which nothing is ever sent (a port without an adapter behind it)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = tmp_path / "ttySILENT"
    path.symlink_to(os.ttyname(slave))
    yield str(path)
    os.close(master)
    os.close(slave)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (PermissionError(13, "Permission denied"), "serial_permission"),
        (FileNotFoundError(2, "No such file or directory"), "serial_not_found"),
        (OSError(19, "No such device"), "serial_not_found"),
        (OSError(16, "Device or resource busy"), "serial_cannot_open"),
        (OSError(25, "Inappropriate ioctl for device"), "serial_not_a_port"),
        (IsADirectoryError(21, "Is a directory"), "serial_not_a_port"),
    ],
)
async def test_a_port_that_cannot_be_opened_says_what_to_do(
    hass: HomeAssistant, failure: OSError, reason: str
) -> None:
    """Each way the system refuses a port has its own message (translated, with the remedy)."""
    form = await _flow_to_serial_form(hass)
    with patch("serialx.open_serial_connection", side_effect=failure):
        result = await hass.config_entries.flow.async_configure(
            form["flow_id"], {CONF_DEVICE: "/dev/ttyUSB0"}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": reason}


async def test_the_form_rejects_what_is_no_port_and_a_port_without_vbus_data(
    hass: HomeAssistant, silent_pty: str, tmp_path: Path
) -> None:
    """No path, a path that does not exist, a port that stays silent: the form says which."""
    form = await _flow_to_serial_form(hass)
    flow_id = form["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_DEVICE: "COM3"})
    assert result["errors"] == {CONF_DEVICE: "invalid_serial_port"}
    missing = str(tmp_path / "ttyUSB9")
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_DEVICE: missing})
    assert result["errors"] == {"base": "serial_not_found"}
    # Nothing ever arrives on this port, so any wait ends in the same error; a short one here.
    with patch.object(config_flow, "SERIAL_DATA_TIMEOUT", 0.2):
        result = await hass.config_entries.flow.async_configure(flow_id, {CONF_DEVICE: silent_pty})
    assert result["errors"] == {"base": "no_serial_data"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_reconfigure_moves_the_entry_to_another_port(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    tmp_path: Path,
) -> None:
    """The adapter moved: the entry follows it to the new port and keeps its entities."""
    entry = await _add_serial_entry(hass, link)
    await wait_for_packets(entry.runtime_data, 2)
    entities = {item.entity_id for item in er.async_entries_for_config_entry(
        er.async_get(hass), entry.entry_id)}  # fmt: skip
    await emulator.close_serial()
    moved = await emulator.open_serial(tmp_path / "ttyMOVED")

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == CONNECTION_SERIAL
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_DEVICE: moved})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_DEVICE] == moved
    assert entry.unique_id == f"serial-{link}-0"  # its entities' IDs are made from it
    await wait_for_packets(entry.runtime_data, 2)
    assert {item.entity_id for item in er.async_entries_for_config_entry(
        er.async_get(hass), entry.entry_id)} == entities  # fmt: skip


def _usb(device: str) -> UsbServiceInfo:
    """What Home Assistant's usb integration reports for the ids in the manifest."""
    return UsbServiceInfo(
        device=device,
        vid="1FEF",
        pid="2018",
        serial_number="00001234",
        manufacturer="RESOL",
        description="VBus USB",
    )


async def test_a_vbus_adapter_found_on_usb_is_offered_once_it_carries_vbus_data(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
) -> None:
    """The ids come from a user's report: the port's data confirms the adapter, then it asks."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USB}, data=_usb(link)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    assert result["description_placeholders"] == {
        "name": "DeltaSol MX via Serial port ttyVBUS",
        "port": link,
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == "usb-1FEF:2018-00001234-0"
    assert entry.data == {CONF_CONNECTION: CONNECTION_SERIAL, CONF_DEVICE: link, CONF_CHANNEL: 0}
    await hass.async_block_till_done()

    # Found again at another path (plugged into another socket): the entry follows it.
    await emulator.close_serial()
    moved = await emulator.open_serial(Path(link).with_name("ttyACM1"))
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USB}, data=_usb(moved)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_DEVICE] == moved
    await hass.async_block_till_done()  # the entry is reloaded on the new port
    assert entry.state is ConfigEntryState.LOADED
    await wait_for_packets(entry.runtime_data, 2)


async def test_a_usb_device_without_vbus_data_is_not_claimed(
    hass: HomeAssistant, silent_pty: str
) -> None:
    """A device with those ids that sends no VBus is dropped without a form."""
    with patch.object(config_flow, "SERIAL_DATA_TIMEOUT", 0.2):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=_usb(silent_pty)
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_vbus_port"
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_a_port_in_use_by_another_entry_is_not_taken_again(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
    silent_pty: str,
) -> None:
    """Neither a new entry nor a reconfigured one may take a port another entry reads."""
    first = await _add_serial_entry(hass, link)
    other = serial_entry(silent_pty)
    other.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": other.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_DEVICE: link})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert other.data[CONF_DEVICE] == silent_pty
    assert first.data[CONF_DEVICE] == link


async def test_a_reloaded_entry_opens_its_port_again(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
) -> None:
    """The port is opened exclusively (locked): unloading must let go of it, or no reload works."""
    entry = await _add_serial_entry(hass, link)
    await wait_for_packets(entry.runtime_data, 2)
    for _ in range(3):
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        async with asyncio.timeout(10):  # a bound, not a timing assumption
            await entry.runtime_data.session.wait_connected()
        await wait_for_packets(entry.runtime_data, 2)
    assert await hass.config_entries.async_unload(entry.entry_id)
    # Unloaded, the port is free for another program.
    connection = await connect(ConnectionConfig(serial_port=link))
    await connection.close()


@pytest.mark.parametrize(
    "failure",
    [PermissionError(13, "Permission denied"), SerialException("unsupported platform")],
)
async def test_a_system_that_cannot_list_its_ports_still_takes_a_typed_path(
    hass: HomeAssistant, emulator: Emulator, link: str, failure: Exception
) -> None:
    """No /sys in a container, say: the form has no choices, and the typed path works."""
    with patch.object(config_flow, "list_serial_ports", side_effect=failure):
        form = await _flow_to_serial_form(hass)
        assert form["data_schema"].schema[CONF_DEVICE].config["options"] == []
        result = await hass.config_entries.flow.async_configure(
            form["flow_id"], {CONF_DEVICE: link}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_the_same_port_by_its_device_node_is_not_added_twice(
    hass: HomeAssistant,
    emulator: Emulator,
    link: str,
) -> None:
    """An entry has the port by its link: typed by its device node, it is the same port."""
    await _add_serial_entry(hass, link)
    form = await _flow_to_serial_form(hass)
    node = os.path.realpath(link)  # noqa: ASYNC240 - a symlink in tmp_path, no real I/O
    result = await hass.config_entries.flow.async_configure(form["flow_id"], {CONF_DEVICE: node})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
