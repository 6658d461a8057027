"""The config flow, the options flow, discovery, reauthentication and reconfiguration.

Every connection test runs against the library's emulator over real loopback TCP; discovery
queries and device-information requests go to loopback responders only. The integration's
setup is patched out: these tests are about the flows, not about running an entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final
from unittest.mock import AsyncMock, patch

import pytest
from homeassistant.config_entries import SOURCE_DHCP, SOURCE_IGNORE, SOURCE_USER
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PASSWORD, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers.service_info.dhcp import DhcpServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus import config_flow
from custom_components.resol_vbus.const import (
    CONF_ALLOW_ANY_VALUE,
    CONF_CHANNEL,
    CONF_CONNECTION,
    CONF_FIRMWARE,
    CONF_MIN_INTERVAL,
    CONF_PRODUCT,
    CONF_REFRESH_INTERVAL,
    CONF_SERIAL,
    CONF_TLS,
    CONF_VIA_TAG,
    CONF_WRITE_LIMIT,
    CONNECTION_LOCAL,
    CONNECTION_VBUSNET,
    DOMAIN,
)
from custom_components.resol_vbus.vbus.emulator import (
    ChannelSource,
    Cycle,
    Emulator,
    Personality,
    SyntheticSource,
)
from custom_components.resol_vbus.vbus.errors import VBusConnectionError

from .test_translations import assert_flow_result_translated, flow_title
from .vbus_lib.faultproxy import HANDSHAKE_STEPS, Failure, FaultProxy, Step

LOOPBACK = "127.0.0.1"
UNREACHABLE = "192.0.2.10"  # TEST-NET-1: stored in entries, never contacted
DL2_SERIAL = "001E66E7A002"
DL3_SERIAL = "001E66E7A003"
DEFAULT_PASSWORD = "vbus"

type StartEmulator = Callable[..., Awaitable[Emulator]]


class QuietSource(ChannelSource):
    """A channel that carries nothing: the logger answers, but no VBus packet ever arrives."""

    def __init__(self, name: str = "Quiet") -> None:
        super().__init__(name=name, controller_address=None)

    def cycles(self) -> Iterator[Cycle]:
        return iter(())


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Entries are created and reloaded, but not really set up."""
    with (
        patch("custom_components.resol_vbus.async_setup_entry", return_value=True) as setup,
        patch("custom_components.resol_vbus.async_unload_entry", return_value=True),
    ):
        yield setup


@pytest.fixture
def closed_port(socket_enabled: None) -> Iterator[int]:
    """A loopback TCP port that refuses connections (bound, never listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def loopback_only(
    socket_enabled: None, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Aim discovery, device information and VBus.net at loopback; keep the waits short.

    The UDP query goes to a socket that never answers (nothing is found unless a test aims it at
    an emulator); device information is refused unless a test gives an emulator's HTTP port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        monkeypatch.setattr(config_flow, "DISCOVERY_BROADCAST", LOOPBACK)
        monkeypatch.setattr(config_flow, "DISCOVERY_PORT", silent.getsockname()[1])
        monkeypatch.setattr(config_flow, "DISCOVERY_TIMEOUT", 0.1)
        monkeypatch.setattr(config_flow, "HTTP_PORTS", (closed_port,))
        monkeypatch.setattr(config_flow, "HTTP_TIMEOUT", 2.0)
        monkeypatch.setattr(config_flow, "SEARCH_HTTP_TIMEOUT", 2.0)
        monkeypatch.setattr(config_flow, "PROBE_DATA_TIMEOUT", 0.3)
        monkeypatch.setattr(config_flow, "VBUSNET_HOST", LOOPBACK)
        monkeypatch.setattr(config_flow, "VBUSNET_PORT", closed_port)
        monkeypatch.setattr(config_flow, "VBUSNET_TLS_PORT", closed_port)
        yield


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """Start emulators on loopback (data at once: speed 1000); all stop after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**kwargs: Any) -> Emulator:
            kwargs.setdefault("speed", 1000)
            kwargs.setdefault("offer_interval", None)
            return await stack.enter_async_context(Emulator(**kwargs))

        yield start


@pytest.fixture
async def tls_hellos(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[bytes]]:
    """VBus.net's TLS port: a server that keeps the first bytes of each client and hangs up."""
    hellos: list[bytes] = []

    async def record_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hellos.append(await reader.read(3))
        writer.close()

    server = await asyncio.start_server(record_hello, LOOPBACK, 0)
    monkeypatch.setattr(config_flow, "VBUSNET_TLS_PORT", server.sockets[0].getsockname()[1])
    yield hellos
    server.close()
    await server.wait_closed()


def serve_information(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    """Let the flow fetch the device information from ``emulator``."""
    monkeypatch.setattr(config_flow, "HTTP_PORTS", (emulator.http_port,))


def discover_only(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    """Send the UDP discovery query to ``emulator`` (and its device information)."""
    monkeypatch.setattr(config_flow, "DISCOVERY_PORT", emulator.discovery_port)
    if emulator.http_port is not None:
        serve_information(monkeypatch, emulator)


# -- helpers: every result shown must be translated ------------------------------------------------


async def start_flow(
    hass: HomeAssistant, source: str = SOURCE_USER, data: Any = None
) -> FlowResult:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": source}, data=data
    )
    assert_flow_result_translated(hass, result)
    return result


async def submit(hass: HomeAssistant, result: FlowResult, user_input: dict[str, Any]) -> FlowResult:
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert_flow_result_translated(hass, result)
    if result["type"] is FlowResultType.ABORT and result["reason"] in RELOADING:
        # The entry is reloaded with what the flow stored: let that end within the test, not
        # while Home Assistant stops after it (which it reports, failing the test).
        await hass.async_block_till_done()
    return result


#: Flow outcomes after which Home Assistant reloads the entry.
RELOADING: Final = ("reconfigure_successful", "reauth_successful")


async def start_reauth(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    """Start re-authentication as Home Assistant does when the device rejects the password."""
    result = await entry.start_reauth_flow(hass)
    assert_flow_result_translated(hass, result)
    return result


async def start_reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    result = await entry.start_reconfigure_flow(hass)
    assert_flow_result_translated(hass, result)
    return result


async def start_options(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert_flow_result_translated(hass, result, "options")
    return result


async def choose(hass: HomeAssistant, result: FlowResult, step: str) -> FlowResult:
    """Pick a menu option."""
    return await submit(hass, result, {"next_step_id": step})


async def open_local_form(hass: HomeAssistant) -> FlowResult:
    result = await choose(hass, await start_flow(hass), "local")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    return result


def local_input(
    port: int, password: str = DEFAULT_PASSWORD, host: str = LOOPBACK
) -> dict[str, Any]:
    return {CONF_HOST: host, CONF_PORT: port, CONF_PASSWORD: password}


def suggested(result: FlowResult) -> dict[str, Any]:
    """The values a form shows in its fields (suggested values, e.g. the input kept)."""
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the integration logged at WARNING or above."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components") and record.levelno >= logging.WARNING
    ]


def select_options(result: FlowResult, field: str) -> list[dict[str, str]]:
    (selector,) = (value for key, value in result["data_schema"].schema.items() if key == field)
    return list(selector.config["options"])


def local_entry(
    serial: str | None = DL2_SERIAL,
    channel: int = 0,
    host: str = UNREACHABLE,
    port: int = 7053,
    **extra: Any,
) -> MockConfigEntry:
    data: dict[str, Any] = {
        CONF_CONNECTION: CONNECTION_LOCAL,
        CONF_HOST: host,
        CONF_PORT: port,
        CONF_PASSWORD: "vbus",
        CONF_CHANNEL: channel,
    }
    if serial is not None:
        data |= {CONF_SERIAL: serial, CONF_PRODUCT: "DL2", CONF_FIRMWARE: "2.2.0"}
    return MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via DL2",
        unique_id=f"{serial or host}-{channel}",
        data=data | extra,
    )


def dhcp(mac: str, ip: str = LOOPBACK) -> DhcpServiceInfo:
    return DhcpServiceInfo(ip=ip, hostname="resol", macaddress=mac)


# -- user step and UDP discovery (search) ----------------------------------------------------------


async def test_user_step_sends_nothing_until_asked_to_search(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discovery is opt-in: the first step only offers the choices."""
    search = AsyncMock(return_value=[])
    monkeypatch.setattr(config_flow, "discover", search)

    result = await start_flow(hass)

    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == ["search", "local", "serial", "vbusnet"]
    search.assert_not_awaited()


async def test_search_that_finds_nothing_offers_to_search_again(hass: HomeAssistant) -> None:
    result = await choose(hass, await start_flow(hass), "search")

    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "search"
    assert result["menu_options"] == ["search", "local", "serial", "vbusnet"]
    result = await choose(hass, result, "search")
    assert result["step_id"] == "search"
    result = await choose(hass, result, "local")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"


async def test_search_survives_a_failing_discovery(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        config_flow,
        "discover",
        AsyncMock(side_effect=VBusConnectionError("Cannot open a UDP socket for the discovery")),
    )

    result = await choose(hass, await start_flow(hass), "search")

    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "search"


async def test_discovered_device_is_offered_and_added(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, discovery_port=0, http_port=0)
    discover_only(monkeypatch, emulator)

    result = await choose(hass, await start_flow(hass), "search")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovered"
    assert select_options(result, CONF_DEVICE) == [
        {"value": LOOPBACK, "label": f"DL2 {DL2_SERIAL} (127.0.0.1)"}
    ]

    result = await submit(hass, result, {CONF_DEVICE: LOOPBACK})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    assert suggested(result) == {CONF_HOST: LOOPBACK}

    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via DL2 127.0.0.1"
    assert result["data"] == {
        CONF_CONNECTION: CONNECTION_LOCAL,
        CONF_HOST: LOOPBACK,
        CONF_PORT: emulator.port,
        CONF_PASSWORD: "vbus",
        CONF_CHANNEL: 0,
        CONF_SERIAL: DL2_SERIAL,
        CONF_PRODUCT: "DL2",
        CONF_FIRMWARE: "2.2.0",
    }
    assert result["result"].unique_id == f"{DL2_SERIAL}-0"
    assert result["options"] == {}


async def test_discovered_device_without_information_is_listed_by_address(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A VBus/LAN adapter answers the UDP query but has no device-information endpoint.
    emulator = await start_emulator(personality=Personality.LAN, discovery_port=0)
    discover_only(monkeypatch, emulator)

    result = await choose(hass, await start_flow(hass), "search")
    assert select_options(result, CONF_DEVICE) == [{"value": LOOPBACK, "label": LOOPBACK}]

    result = await submit(hass, result, {CONF_DEVICE: LOOPBACK})
    assert result["step_id"] == "local"
    result = await submit(hass, result, local_input(emulator.port))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via VBus/LAN 127.0.0.1"
    assert result["data"] == {
        CONF_CONNECTION: CONNECTION_LOCAL,
        CONF_HOST: LOOPBACK,
        CONF_PORT: emulator.port,
        CONF_PASSWORD: "vbus",
        CONF_CHANNEL: 0,
    }
    assert result["result"].unique_id == "127.0.0.1-0"


async def test_discovered_known_device_gets_its_new_host_and_aborts(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, discovery_port=0, http_port=0)
    discover_only(monkeypatch, emulator)
    entry = local_entry()
    entry.add_to_hass(hass)
    other = local_entry(serial="001E66000001")
    other.add_to_hass(hass)

    result = await choose(hass, await start_flow(hass), "search")
    result = await submit(hass, result, {CONF_DEVICE: LOOPBACK})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_HOST] == LOOPBACK
    assert other.data[CONF_HOST] == UNREACHABLE


async def test_discovered_dl3_offers_only_its_unconfigured_channels(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(
        personality=Personality.DL3,
        channels={1: SyntheticSource(), 2: SyntheticSource(name="Second MX")},
        discovery_port=0,
        http_port=0,
    )
    discover_only(monkeypatch, emulator)
    entry = local_entry(serial=DL3_SERIAL, channel=1)
    entry.add_to_hass(hass)

    result = await choose(hass, await start_flow(hass), "search")
    result = await submit(hass, result, {CONF_DEVICE: LOOPBACK})
    # The DL3 may have more channels: the flow goes on, with the host of channel 1 updated.
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    assert entry.data[CONF_HOST] == LOOPBACK

    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "channel"
    assert select_options(result, CONF_CHANNEL) == [{"value": "2", "label": "2: Second MX"}]

    result = await submit(hass, result, {CONF_CHANNEL: "2"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via DL3 127.0.0.1 channel 2"
    assert result["result"].unique_id == f"{DL3_SERIAL}-2"
    assert result["data"][CONF_CHANNEL] == 2


# -- local device ----------------------------------------------------------------------------------


async def test_local_device_is_added_once(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, http_port=0)
    serve_information(monkeypatch, emulator)

    result = await open_local_form(hass)
    assert suggested(result) == {}
    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == f"{DL2_SERIAL}-0"

    result = await submit(hass, await open_local_form(hass), local_input(emulator.port))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_wrong_password_is_reported_and_can_be_corrected(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, password="secret")

    result = await submit(hass, await open_local_form(hass), local_input(emulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result) == local_input(emulator.port)

    result = await submit(hass, result, local_input(emulator.port, password="secret"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PASSWORD] == "secret"


async def test_unreachable_device_is_reported_and_can_be_corrected(
    hass: HomeAssistant, start_emulator: StartEmulator, closed_port: int
) -> None:
    emulator = await start_emulator(personality=Personality.LAN)

    result = await submit(hass, await open_local_form(hass), local_input(closed_port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert suggested(result) == local_input(closed_port)

    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PORT] == emulator.port


async def test_device_without_data_is_reported_and_another_can_be_chosen(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    quiet = await start_emulator(personality=Personality.LAN, channels={1: QuietSource()})
    working = await start_emulator(personality=Personality.LAN)

    result = await submit(hass, await open_local_form(hass), local_input(quiet.port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_data"}

    result = await submit(hass, result, local_input(working.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PORT] == working.port


async def test_refused_data_mode_is_a_connection_problem(
    hass: HomeAssistant, start_emulator: StartEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The device said no to DATA: worth another try later, not a bug to log."""
    emulator = await start_emulator(personality=Personality.DL2)
    emulator.faults.reject_data = True

    result = await submit(hass, await open_local_form(hass), local_input(emulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert warnings_logged(caplog) == []

    emulator.faults.reject_data = False
    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_unexpected_error_is_logged_and_reported(
    hass: HomeAssistant,
    start_emulator: StartEmulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only what no code path expects (a bug) is "unknown", logged with its traceback."""
    emulator = await start_emulator(personality=Personality.DL2)
    monkeypatch.setattr(config_flow, "probe", AsyncMock(side_effect=RuntimeError("a bug")))

    with caplog.at_level(logging.ERROR, logger=config_flow.__name__):
        result = await submit(hass, await open_local_form(hass), local_input(emulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    (record,) = [r for r in caplog.records if r.name == config_flow.__name__]
    assert record.getMessage() == (
        f"Unexpected error while testing the connection to 127.0.0.1:{emulator.port}"
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "a bug"


@pytest.mark.parametrize("failure", list(Failure))
@pytest.mark.parametrize("step", HANDSHAKE_STEPS)
async def test_every_network_failure_shows_cannot_connect(
    hass: HomeAssistant,
    start_emulator: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    short_replies: None,
    step: Step,
    failure: Failure,
) -> None:
    """Any failure at any step of either probe: "cannot connect".

    A reset, an early close, silence, garbage or a flood of line breaks.

    Nothing is logged as an error, and once the network behaves, the same form goes on.
    """
    emulator = await start_emulator(personality=Personality.VBUSNET, via_tags=("D0123",))
    async with FaultProxy(emulator.port) as proxy:
        monkeypatch.setattr(config_flow, "VBUSNET_PORT", proxy.port)
        proxy.arm(step, failure, times=10**6)
        form = await choose(hass, await start_flow(hass), "vbusnet")
        answer: dict[str, Any] = {CONF_VIA_TAG: "D0123", CONF_PASSWORD: "vbus", CONF_TLS: False}
        if step in (Step.CHANNEL, Step.DATA):  # only the second probe sends these
            form = await submit(hass, form, answer)
            assert form["step_id"] == "channel"
            answer = {CONF_CHANNEL: "1"}
        result = await submit(hass, form, answer)
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == form["step_id"]
        assert result["errors"] == {"base": "cannot_connect"}
        assert proxy.injected >= 1
        assert warnings_logged(caplog) == []

        proxy.arm(step, failure, times=0)
        result = await submit(hass, result, answer)
        if result["type"] is FlowResultType.FORM:  # the first probe passed: now the channel
            assert result["step_id"] == "channel"
            assert result["errors"] == {}
            result = await submit(hass, result, {CONF_CHANNEL: "1"})
        assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("192.168.1.5", ("192.168.1.5", 7053)),
        ("  dl2.local\t", ("dl2.local", 7053)),
        ("DL2-001E66E7A002.Local.", ("dl2-001e66e7a002.local.", 7053)),
        ("192.168.1.5:7054", ("192.168.1.5", 7054)),
        ("tcp://192.168.1.5:7054", ("192.168.1.5", 7054)),
        # A web page's address: its port is the web server's, the VBus port stays.
        ("http://192.168.1.5/", ("192.168.1.5", 7053)),
        ("HTTPS://dl3.local:8443/dlx/index.html?x=1#top", ("dl3.local", 7053)),
        ("192.168.1.5/", ("192.168.1.5", 7053)),
        ("fe80::1", ("fe80::1", 7053)),
        ("[fe80::1]:7054", ("fe80::1", 7054)),
        ("http://[2001:db8::5]/", ("2001:db8::5", 7053)),
    ],
)
def test_the_host_field_takes_addresses_as_people_type_them(
    typed: str, expected: tuple[str, int]
) -> None:
    assert config_flow.parse_host(typed, 7053) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "http://",
        "http:///index.html",
        "my device",
        "-dl2.local",
        "dl2..local",
        "192.168.1.5:0",
        "192.168.1.5:70530",
        "192.168.1.5:port",
        "[fe80::zz]:7053",
        "admin:secret@192.168.1.5",
        "http://admin@192.168.1.5/",
    ],
)
def test_the_host_field_refuses_what_names_no_host(typed: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the form shows one error for all of these
        config_flow.parse_host(typed, 7053)


async def test_a_url_or_host_and_port_in_the_host_field_connects(
    hass: HomeAssistant, start_emulator: StartEmulator, closed_port: int
) -> None:
    """What a browser shows, or "host:port", reaches the device instead of "Failed to connect"."""
    emulator = await start_emulator(personality=Personality.LAN)

    result = await submit(
        hass, await open_local_form(hass), local_input(emulator.port, host="http://127.0.0.1/")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert (result["data"][CONF_HOST], result["data"][CONF_PORT]) == (LOOPBACK, emulator.port)

    result = await submit(
        hass,
        await open_local_form(hass),
        local_input(closed_port, host=f" 127.0.0.1:{emulator.port} "),
    )
    # The port typed after the host reached the device: the one just added (its unique ID is
    # the address as stored, not as typed).
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_host_field_that_names_no_host_is_explained_there(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(personality=Personality.LAN)

    typed = local_input(emulator.port, host="my controller")
    result = await submit(hass, await open_local_form(hass), typed)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    assert suggested(result) == typed  # as typed, to correct it

    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_HOST] == LOOPBACK


# -- DL3 channels ----------------------------------------------------------------------------------


async def test_dl3_channel_is_chosen_by_name(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL3, http_port=0)
    serve_information(monkeypatch, emulator)

    result = await submit(hass, await open_local_form(hass), local_input(emulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "channel"
    assert result["errors"] == {}
    assert select_options(result, CONF_CHANNEL) == [{"value": "1", "label": "1: DeltaSol MX"}]

    result = await submit(hass, result, {CONF_CHANNEL: "1"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via DL3 127.0.0.1 channel 1"
    assert result["data"] == {
        CONF_CONNECTION: CONNECTION_LOCAL,
        CONF_HOST: LOOPBACK,
        CONF_PORT: emulator.port,
        CONF_PASSWORD: "vbus",
        CONF_CHANNEL: 1,
        CONF_SERIAL: DL3_SERIAL,
        CONF_PRODUCT: "DL3",
        CONF_FIRMWARE: "2.1.0",
    }
    assert result["result"].unique_id == f"{DL3_SERIAL}-1"


async def test_channel_errors_are_reported_on_the_channel_step(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(
        personality=Personality.DL3, channels={1: SyntheticSource(), 2: QuietSource()}
    )
    result = await submit(hass, await open_local_form(hass), local_input(emulator.port))
    assert select_options(result, CONF_CHANNEL) == [
        {"value": "1", "label": "1: DeltaSol MX"},
        {"value": "2", "label": "2: Quiet"},
    ]

    result = await submit(hass, result, {CONF_CHANNEL: "2"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "channel"
    assert result["errors"] == {"base": "no_data"}
    assert suggested(result) == {CONF_CHANNEL: "2"}

    emulator.faults.reject_channel = True
    result = await submit(hass, result, {CONF_CHANNEL: "1"})
    assert result["step_id"] == "channel"
    assert result["errors"] == {"base": "invalid_channel"}

    emulator.faults.reject_channel = False
    result = await submit(hass, result, {CONF_CHANNEL: "1"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via DL3 127.0.0.1 channel 1"
    assert result["result"].unique_id == "127.0.0.1-1"
    # No device information, but it has channels: a DL3, not a VBus/LAN adapter.
    assert result["data"][CONF_PRODUCT] == "DL3"


async def test_dl3_with_every_channel_configured_aborts(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL3, http_port=0)
    serve_information(monkeypatch, emulator)
    local_entry(serial=DL3_SERIAL, channel=1).add_to_hass(hass)

    result = await submit(hass, await open_local_form(hass), local_input(emulator.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# -- VBus.net --------------------------------------------------------------------------------------


async def test_vbusnet_device_is_added(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.VBUSNET, via_tags=("D0123",))
    monkeypatch.setattr(config_flow, "VBUSNET_PORT", emulator.port)

    result = await choose(hass, await start_flow(hass), "vbusnet")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "vbusnet"

    result = await submit(
        hass, result, {CONF_VIA_TAG: " D0123 ", CONF_PASSWORD: "vbus", CONF_TLS: False}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "channel"
    assert select_options(result, CONF_CHANNEL) == [{"value": "1", "label": "1: DeltaSol MX"}]

    result = await submit(hass, result, {CONF_CHANNEL: "1"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via VBus.net channel 1"
    assert result["data"] == {
        CONF_CONNECTION: CONNECTION_VBUSNET,
        CONF_HOST: LOOPBACK,  # vbus.net, aimed at loopback by the fixture
        CONF_PORT: emulator.port,
        CONF_PASSWORD: "vbus",
        CONF_VIA_TAG: "D0123",
        CONF_TLS: False,
        CONF_CHANNEL: 1,
    }
    # A digest of the via tag, never the tag itself: unique IDs are not secret.
    assert result["result"].unique_id == "vbusnet-e5791ed334e13747-1"


async def test_vbusnet_errors_are_reported_and_can_be_corrected(
    hass: HomeAssistant,
    start_emulator: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tls_hellos: list[bytes],
) -> None:
    vbusnet = await start_emulator(personality=Personality.VBUSNET, via_tags=("D0123",))
    dl2 = await start_emulator(personality=Personality.DL2)
    result = await choose(hass, await start_flow(hass), "vbusnet")

    # Blanks are no via tag at all (without one, VBus.net would reject the password).
    monkeypatch.setattr(config_flow, "VBUSNET_PORT", vbusnet.port)
    result = await submit(hass, result, {CONF_VIA_TAG: "  ", CONF_PASSWORD: "vbus"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_via_tag"}

    # VBus.net does not know the via tag.
    result = await submit(
        hass, result, {CONF_VIA_TAG: "D9999", CONF_PASSWORD: "vbus", CONF_TLS: False}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "vbusnet"
    assert result["errors"] == {"base": "invalid_via_tag"}
    assert suggested(result) == {CONF_VIA_TAG: "D9999", CONF_PASSWORD: "vbus", CONF_TLS: False}

    # The address is a plain device, which does not know CONNECT.
    monkeypatch.setattr(config_flow, "VBUSNET_PORT", dl2.port)
    result = await submit(
        hass, result, {CONF_VIA_TAG: "D0123", CONF_PASSWORD: "vbus", CONF_TLS: False}
    )
    assert result["errors"] == {"base": "invalid_via_tag"}

    # TLS goes to the TLS port; this server does not complete the handshake.
    monkeypatch.setattr(config_flow, "VBUSNET_PORT", vbusnet.port)
    result = await submit(
        hass, result, {CONF_VIA_TAG: "D0123", CONF_PASSWORD: "vbus", CONF_TLS: True}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert tls_hellos == [b"\x16\x03\x01"]  # a TLS ClientHello record

    result = await submit(
        hass, result, {CONF_VIA_TAG: "D0123", CONF_PASSWORD: "vbus", CONF_TLS: False}
    )
    assert result["step_id"] == "channel"
    result = await submit(hass, result, {CONF_CHANNEL: "1"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PORT] == vbusnet.port
    assert result["data"][CONF_TLS] is False


async def test_vbusnet_is_encrypted_unless_the_user_turns_it_off(
    hass: HomeAssistant, tls_hellos: list[bytes]
) -> None:
    """The password and the controller's data cross the internet: TLS is the default."""
    result = await choose(hass, await start_flow(hass), "vbusnet")
    (tls,) = (key for key in result["data_schema"].schema if key == CONF_TLS)
    assert tls.default() is True

    result = await submit(hass, result, {CONF_VIA_TAG: "D0123", CONF_PASSWORD: "vbus"})

    assert result["errors"] == {"base": "cannot_connect"}  # this server ends every handshake
    assert tls_hellos == [b"\x16\x03\x01"]  # a TLS ClientHello record, on the TLS port


# -- DHCP ------------------------------------------------------------------------------------------


async def test_dhcp_discovery_of_a_new_device_asks_for_the_password(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, http_port=0)
    serve_information(monkeypatch, emulator)

    result = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a002"))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local"
    assert suggested(result) == {CONF_HOST: LOOPBACK}
    (progress,) = hass.config_entries.flow.async_progress()
    assert progress["context"]["title_placeholders"] == {"name": f"{DL2_SERIAL} (127.0.0.1)"}
    assert flow_title(hass, result) == "001E66E7A002 (127.0.0.1)"

    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DeltaSol MX via DL2 127.0.0.1"
    assert result["result"].unique_id == f"{DL2_SERIAL}-0"


async def test_dhcp_discovery_updates_the_host_of_every_channel(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    channel_1 = local_entry(serial=DL3_SERIAL, channel=1)
    channel_1.add_to_hass(hass)
    assert await hass.config_entries.async_setup(channel_1.entry_id)
    channel_2 = local_entry(serial=DL3_SERIAL, channel=2)  # not loaded
    channel_2.add_to_hass(hass)
    other = local_entry()
    other.add_to_hass(hass)
    assert mock_setup_entry.call_count == 1

    result = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a003", ip="192.0.2.20"))
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert channel_1.data[CONF_HOST] == "192.0.2.20"
    assert channel_2.data[CONF_HOST] == "192.0.2.20"
    assert other.data[CONF_HOST] == UNREACHABLE
    assert mock_setup_entry.call_count == 2  # the loaded entry was reloaded

    # Found again at the same address: nothing changes, nothing is reloaded.
    result = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a003", ip="192.0.2.20"))
    await hass.async_block_till_done()
    assert result["reason"] == "already_configured"
    assert mock_setup_entry.call_count == 2


async def test_dhcp_discovery_of_an_ignored_device_aborts(hass: HomeAssistant) -> None:
    MockConfigEntry(domain=DOMAIN, source=SOURCE_IGNORE, unique_id=DL2_SERIAL).add_to_hass(hass)

    result = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a002"))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_dhcp_discovery_in_progress_is_not_repeated(hass: HomeAssistant) -> None:
    first = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a002"))
    assert first["type"] is FlowResultType.FORM

    result = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a002"))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"


# -- reauthentication ------------------------------------------------------------------------------


async def test_reauth_stores_the_new_password(
    hass: HomeAssistant, start_emulator: StartEmulator, mock_setup_entry: AsyncMock
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, password="new")
    entry = local_entry(host=LOOPBACK, port=emulator.port)
    entry.add_to_hass(hass)

    result = await start_reauth(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"host": LOOPBACK, "name": entry.title}

    result = await submit(hass, result, {CONF_PASSWORD: "wrong"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await submit(hass, result, {CONF_PASSWORD: "new"})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == local_entry(host=LOOPBACK, port=emulator.port).data | {
        CONF_PASSWORD: "new"
    }
    assert mock_setup_entry.call_count == 1  # reloaded


async def test_reauth_reports_a_channel_the_device_does_not_have(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    # The entry was made for a DL3 channel; a DL2 answers CHANNEL with "unknown command".
    emulator = await start_emulator(personality=Personality.DL2)
    entry = local_entry(serial=DL3_SERIAL, channel=1, host=LOOPBACK, port=emulator.port)
    entry.add_to_hass(hass)

    result = await start_reauth(hass, entry)
    result = await submit(hass, result, {CONF_PASSWORD: "vbus"})

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_channel"}
    assert entry.data[CONF_PASSWORD] == "vbus"


# -- reconfiguration -------------------------------------------------------------------------------


async def test_reconfigure_moves_the_entry_to_a_new_address(
    hass: HomeAssistant,
    start_emulator: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, http_port=0)
    serve_information(monkeypatch, emulator)
    entry = local_entry()
    entry.add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert suggested(result) == local_input(7053, host=UNREACHABLE)

    result = await submit(hass, result, local_input(closed_port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert suggested(result) == local_input(closed_port)

    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == f"{DL2_SERIAL}-0"
    assert entry.data == local_entry(host=LOOPBACK, port=emulator.port).data


async def test_reconfigure_to_another_device_aborts(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.DL2, http_port=0)
    serve_information(monkeypatch, emulator)
    entry = local_entry(serial="001E66E7A0FF")
    entry.add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result, local_input(emulator.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert entry.data[CONF_HOST] == UNREACHABLE
    assert entry.unique_id == "001E66E7A0FF-0"


async def test_reconfigure_keeps_the_serial_without_device_information(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(personality=Personality.DL2)  # no HTTP endpoint this time
    entry = local_entry()
    entry.add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result, local_input(emulator.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == f"{DL2_SERIAL}-0"
    assert entry.data == local_entry(host=LOOPBACK, port=emulator.port).data


async def test_reconfigure_changes_the_dl3_channel(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(
        personality=Personality.DL3,
        channels={1: SyntheticSource(), 2: SyntheticSource(), 3: SyntheticSource(name="Third")},
        http_port=0,
    )
    serve_information(monkeypatch, emulator)
    entry = local_entry(serial=DL3_SERIAL, channel=1, host=LOOPBACK, port=emulator.port)
    entry.add_to_hass(hass)
    local_entry(serial=DL3_SERIAL, channel=2).add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result, local_input(emulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "channel"
    assert suggested(result) == {CONF_CHANNEL: "1"}
    assert select_options(result, CONF_CHANNEL) == [
        {"value": "1", "label": "1: DeltaSol MX"},
        {"value": "3", "label": "3: Third"},
    ]

    result = await submit(hass, result, {CONF_CHANNEL: "3"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == f"{DL3_SERIAL}-3"
    assert entry.data[CONF_CHANNEL] == 3
    assert entry.data[CONF_PRODUCT] == "DL3"
    assert entry.title == "DeltaSol MX via DL2"  # a title the user may have chosen stays


async def test_reconfigure_onto_a_configured_device_aborts(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(personality=Personality.LAN)
    entry = local_entry(serial=None)
    entry.add_to_hass(hass)
    local_entry(serial=None, host=LOOPBACK).add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result, local_input(emulator.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_HOST] == UNREACHABLE


async def test_reconfigure_of_a_device_without_serial_follows_its_host(
    hass: HomeAssistant, start_emulator: StartEmulator
) -> None:
    emulator = await start_emulator(personality=Personality.LAN)
    entry = local_entry(serial=None)
    entry.add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result, local_input(emulator.port))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == "127.0.0.1-0"
    assert entry.data == local_entry(serial=None, host=LOOPBACK, port=emulator.port).data


async def test_reconfigure_vbusnet_via_tag(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator(personality=Personality.VBUSNET, via_tags=("D0456",))
    monkeypatch.setattr(config_flow, "VBUSNET_PORT", emulator.port)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via VBus.net channel 1",
        unique_id="vbusnet-e5791ed334e13747-1",
        data={
            CONF_CONNECTION: CONNECTION_VBUSNET,
            CONF_HOST: "vbus.net",
            CONF_PORT: 7053,
            CONF_PASSWORD: "vbus",
            CONF_VIA_TAG: "D0123",
            CONF_TLS: False,
            CONF_CHANNEL: 1,
        },
    )
    entry.add_to_hass(hass)

    result = await start_reconfigure(hass, entry)
    assert result["step_id"] == "reconfigure"
    assert suggested(result) == {CONF_VIA_TAG: "D0123", CONF_PASSWORD: "vbus", CONF_TLS: False}

    result = await submit(hass, result, {CONF_VIA_TAG: "D0456", CONF_PASSWORD: "vbus"})
    assert result["step_id"] == "channel"
    result = await submit(hass, result, {CONF_CHANNEL: "1"})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == "vbusnet-7054b25829d1e375-1"
    assert entry.data == {
        CONF_CONNECTION: CONNECTION_VBUSNET,
        CONF_HOST: LOOPBACK,
        CONF_PORT: emulator.port,
        CONF_PASSWORD: "vbus",
        CONF_VIA_TAG: "D0456",
        CONF_TLS: False,
        CONF_CHANNEL: 1,
    }


# -- what each flow shows: every placeholder given ------------------------------------------------


async def test_every_flow_path_gives_the_placeholders_of_what_it_shows(
    hass: HomeAssistant, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Card titles, step titles and descriptions of each way through the flows, as shown.

    Every result passes :func:`assert_flow_result_translated`; the card title is checked as the
    frontend renders it. Re-authentication showed "Translation [formatjs Error: MISSING_VALUE]":
    Home Assistant gives its card only the placeholder ``name`` (the entry's title).
    """
    # Menu, search, local and VBus.net: no card title of their own (the integration's name).
    menu = await start_flow(hass)
    assert flow_title(hass, menu) is None
    search = await choose(hass, menu, "search")
    assert (search["step_id"], flow_title(hass, search)) == ("search", None)
    local = await choose(hass, search, "local")
    assert (local["step_id"], flow_title(hass, local)) == ("local", None)
    vbusnet = await choose(hass, await start_flow(hass), "vbusnet")
    assert (vbusnet["step_id"], flow_title(hass, vbusnet)) == ("vbusnet", None)

    # A device picked from the search, and one found by DHCP: named by serial and address.
    emulator = await start_emulator(personality=Personality.DL2, discovery_port=0, http_port=0)
    discover_only(monkeypatch, emulator)
    found = await choose(hass, await start_flow(hass), "search")
    assert (found["step_id"], flow_title(hass, found)) == ("discovered", None)
    picked = await submit(hass, found, {CONF_DEVICE: LOOPBACK})
    assert (picked["step_id"], flow_title(hass, picked)) == ("local", f"{DL2_SERIAL} (127.0.0.1)")
    dhcp_form = await start_flow(hass, SOURCE_DHCP, dhcp("001e66e7a0ff", ip="192.0.2.30"))
    assert (dhcp_form["step_id"], flow_title(hass, dhcp_form)) == (
        "local",
        "001E66E7A0FF (192.0.2.30)",
    )

    # Re-authentication: Home Assistant's own placeholders, and the device's address.
    entry = local_entry()
    entry.add_to_hass(hass)
    reauth = await start_reauth(hass, entry)
    assert flow_title(hass, reauth) == "DeltaSol MX via DL2"
    assert reauth["description_placeholders"] == {"host": UNREACHABLE, "name": entry.title}

    # Reconfiguration and options: no card title of their own.
    reconfigure = await start_reconfigure(hass, entry)
    assert (reconfigure["step_id"], flow_title(hass, reconfigure)) == ("reconfigure", None)
    options = await start_options(hass, entry)
    assert (options["step_id"], flow_title(hass, options, "options")) == ("init", None)


# -- options ---------------------------------------------------------------------------------------


OPTIONS = {
    CONF_MIN_INTERVAL: 2.5,
    CONF_REFRESH_INTERVAL: 30,
    CONF_WRITE_LIMIT: 2,
    CONF_ALLOW_ANY_VALUE: True,
}


async def test_options_flow_stores_the_options_and_reloads(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    entry = local_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)

    result = await start_options(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert suggested(result) == {}
    defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert defaults == {
        CONF_MIN_INTERVAL: 0.0,
        CONF_REFRESH_INTERVAL: 10.0,
        CONF_WRITE_LIMIT: 4,
        CONF_ALLOW_ANY_VALUE: False,
    }

    result = await hass.config_entries.options.async_configure(result["flow_id"], OPTIONS)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == OPTIONS
    assert entry.options == OPTIONS
    assert mock_setup_entry.call_count == 2  # reloaded with the new options

    result = await start_options(hass, entry)
    assert suggested(result) == OPTIONS
