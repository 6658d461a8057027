"""Config flow for the RESOL VBus integration.

A local device (DL2, DL3, KM2, VBus/LAN …) or a device behind VBus.net is added in three steps:
the connection (host or via tag, password), the VBus channel (only when the device lists channels,
as a DL3 or VBus.net does) and a test that the channel really carries VBus data. Devices are
offered from the library's UDP discovery and found by DHCP (RESOL's MAC prefix).

A serial port (a VBus/USB adapter, a controller's USB port, a USB-UART with an optocoupler) is
chosen from the ports the system lists, stable ``/dev/serial/by-id/…`` paths first, or typed in;
it is tested by waiting a few seconds for VBus data. Its unique ID is the USB device's identity
(vendor, product, serial number) where it has one, else its path.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import os
import re
from typing import TYPE_CHECKING, Any, Final, override
from urllib.parse import urlsplit

try:  # Home Assistant 2026.9 replaced voluptuous with probatio, a drop-in with the same API
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # older Home Assistant
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]
from homeassistant.config_entries import (
    SOURCE_DHCP,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PASSWORD, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from serialx import SerialException, SerialPortInfo, list_serial_ports

from .const import (
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
    CONNECTION_SERIAL,
    CONNECTION_VBUSNET,
    DEFAULT_MIN_INTERVAL,
    DEFAULT_REFRESH_INTERVAL,
    DEFAULT_WRITE_LIMIT,
    DOMAIN,
    VBUSNET_HOST,
)
from .coordinator import VBusConfigEntry, connection_config
from .entity import hub_name
from .vbus.discovery import (
    DISCOVERY_PORT,
    HTTP_PORTS,
    HTTP_TIMEOUT,
    discover,
    fetch_device_information,
)
from .vbus.errors import (
    AuthenticationError,
    ChannelNotAvailableError,
    HandshakeError,
    NoDataError,
    UnknownCommandError,
    VBusConnectionError,
    ViaTagRejectedError,
)
from .vbus.session import (
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    Channel,
    ConnectionConfig,
    ProbeResult,
    Step,
    probe,
)
from .vbus.specification import Specification

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.helpers.service_info.dhcp import DhcpServiceInfo
    from homeassistant.helpers.service_info.usb import UsbServiceInfo

    from .vbus.discovery import DeviceInformation, DiscoveredDevice

_LOGGER = logging.getLogger(__name__)

# How long the flow waits for the first VBus packet. Controllers send about every second, but a
# DL2/DL3 may need a few seconds after the handshake; the tests patch this.
PROBE_DATA_TIMEOUT: Final = 20.0
# Only the first device seen names the entry, so the probe does not listen any longer.
PROBE_COLLECT_TIME: Final = 0.0
# UDP discovery when the user chooses "search" (the tests aim it at the emulator's responder).
DISCOVERY_TIMEOUT: Final = 1.5
DISCOVERY_BROADCAST: Final = "255.255.255.255"
# A device on the LAN answers its information page within a second; a shorter wait than the
# library's keeps the search under a minute even when hosts answer the query and then hang
# (1.5 s + 8 rounds of 8 look-ups × 2 ports × 3 s = 49.5 s at most, see discover()).
SEARCH_HTTP_TIMEOUT: Final = 3.0
# A serial port carries the bus itself: a controller sends at least once a second, so a few
# seconds without a valid frame mean no VBus on this port (or the wrong port).
SERIAL_DATA_TIMEOUT: Final = 5.0
# Where udev keeps the stable names of USB serial ports; such paths survive re-plugging.
SERIAL_BY_ID: Final = "/dev/serial/by-id/"
# VBus.net listens on 7053 for plain text and on 57053 for TLS.
VBUSNET_PORT: Final = DEFAULT_PORT
VBUSNET_TLS_PORT: Final = DEFAULT_TLS_PORT

# What the title calls the adapter when the device information is not available.
_LOCAL_PRODUCT: Final = "VBus/LAN"
_CHANNEL_PRODUCT: Final = "DL3"
_VBUSNET_PRODUCT: Final = "VBus.net"

_PASSWORD_SELECTOR: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))

LOCAL_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_HOST): TextSelector(TextSelectorConfig(autocomplete="off")),
        vol.Required(CONF_PORT, default=DEFAULT_PORT): cv.port,
        vol.Required(CONF_PASSWORD, default=DEFAULT_PASSWORD): _PASSWORD_SELECTOR,
    }
)


def _vbusnet_schema(*, tls: bool) -> vol.Schema:
    """The VBus.net form; ``tls`` is what the switch shows unless the entry says otherwise."""
    return vol.Schema(
        {
            vol.Required(CONF_VIA_TAG): TextSelector(TextSelectorConfig(autocomplete="off")),
            vol.Required(CONF_PASSWORD, default=DEFAULT_PASSWORD): _PASSWORD_SELECTOR,
            vol.Optional(CONF_TLS, default=tls): BooleanSelector(),
        }
    )


# A new VBus.net connection is encrypted unless the user turns TLS off: the password and the
# controller's data cross the internet.
VBUSNET_SCHEMA: Final = _vbusnet_schema(tls=True)
REAUTH_SCHEMA: Final = vol.Schema({vol.Required(CONF_PASSWORD): _PASSWORD_SELECTOR})
OPTIONS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_MIN_INTERVAL, default=DEFAULT_MIN_INTERVAL): NumberSelector(
            NumberSelectorConfig(
                min=0,
                max=3600,
                step=0.1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        ),
        vol.Required(CONF_REFRESH_INTERVAL, default=DEFAULT_REFRESH_INTERVAL): NumberSelector(
            NumberSelectorConfig(
                min=1, max=1440, step=1, unit_of_measurement="min", mode=NumberSelectorMode.BOX
            )
        ),
        vol.Required(CONF_WRITE_LIMIT, default=DEFAULT_WRITE_LIMIT): NumberSelector(
            NumberSelectorConfig(min=1, max=60, step=1, mode=NumberSelectorMode.BOX)
        ),
        vol.Required(CONF_ALLOW_ANY_VALUE, default=False): BooleanSelector(),
    }
)


#: The ways to add a device: search the network, enter an address, a serial port, VBus.net.
_MENU: Final = ["search", "local", CONNECTION_SERIAL, CONNECTION_VBUSNET]


def vbusnet_device_id(via_tag: str) -> str:
    """What identifies a VBus.net device in unique IDs: a digest of its via tag, not the tag.

    Unique IDs end up in entity and device registries and in bug reports; the via tag (with the
    password) opens the device to anyone on the internet.
    """
    digest = hashlib.sha256(via_tag.strip().lower().encode()).hexdigest()
    return f"{CONNECTION_VBUSNET}-{digest[:16]}"


class _ProbeError(Exception):
    """The input or the connection test failed.

    ``reason`` is the translation key of the form error, ``field`` the field it is shown at
    (``base``: the form as a whole).
    """

    def __init__(self, *, reason: str, field: str = "base") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def _error_reason(err: Exception) -> str:
    """The form error for an exception raised by the library's probe."""
    if isinstance(err, NoDataError):
        return "no_data"
    if isinstance(err, VBusConnectionError):
        return "cannot_connect"
    if isinstance(err, AuthenticationError):
        return "invalid_auth"
    # A VBus/LAN, DL2 … does not know CONNECT: the via tag went to a device, not to VBus.net.
    if isinstance(err, ViaTagRejectedError) or (
        isinstance(err, UnknownCommandError) and err.step == Step.CONNECT
    ):
        return "invalid_via_tag"
    # Likewise, a device without channels does not know CHANNEL.
    if isinstance(err, ChannelNotAvailableError) or (
        isinstance(err, UnknownCommandError) and err.step == Step.CHANNEL
    ):
        return "invalid_channel"
    if isinstance(err, HandshakeError):  # any other refusal, e.g. of DATA: try again later
        return "cannot_connect"
    return "unknown"


#: What opening a path that is no serial port raises: a file, a pipe, /dev/null (no terminal),
#: a directory, a path through a file, a name too long, a loop of links.
_NOT_A_PORT: Final = frozenset(
    {errno.ENOTTY, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP}
)


def _serial_error_reason(err: Exception) -> str:
    """The form error for a serial port that could not be used: what the user can do about it."""
    if isinstance(err, NoDataError):
        return "no_serial_data"
    if not isinstance(err, VBusConnectionError):
        return "unknown"
    cause = err.__cause__
    if isinstance(cause, PermissionError):
        return "serial_permission"
    # EIO: the terminal hung up, e.g. the adapter was unplugged while the flow read from it.
    if isinstance(cause, FileNotFoundError) or (
        isinstance(cause, OSError) and cause.errno in (errno.ENODEV, errno.ENXIO, errno.EIO)
    ):
        return "serial_not_found"
    if isinstance(cause, OSError) and cause.errno in _NOT_A_PORT:
        return "serial_not_a_port"
    return "serial_cannot_open"  # busy: another program holds it (serialx's lock), …


async def _async_probe(
    config: ConnectionConfig, *, wait_for_data: bool, spec: Specification | None = None
) -> ProbeResult:
    """Run the library's probe; raise :class:`_ProbeError` with the form error on failure."""
    try:
        return await probe(
            config,
            wait_for_data=wait_for_data,
            data_timeout=SERIAL_DATA_TIMEOUT if config.serial_port else PROBE_DATA_TIMEOUT,
            collect_time=PROBE_COLLECT_TIME,
            spec=spec,
        )
    except Exception as err:
        reason = _serial_error_reason(err) if config.serial_port else _error_reason(err)
        if reason == "unknown":
            _LOGGER.exception("Unexpected error while testing the connection to %s", config.target)
        raise _ProbeError(reason=reason) from err


def _serial_ports() -> list[SerialPortInfo]:
    """The system's serial ports, stable ``/dev/serial/by-id/`` paths first (blocking I/O).

    None where the system cannot list them (no ``/sys`` in a container, an unsupported
    platform): the user types the path then.
    """
    try:
        ports = list_serial_ports()
    except (OSError, SerialException, NotImplementedError):
        _LOGGER.debug("Cannot list the serial ports", exc_info=True)
        return []
    return sorted(ports, key=lambda port: (not port.device.startswith(SERIAL_BY_ID), port.device))


def _port_label(port: SerialPortInfo) -> str:
    """How a port is listed: its path, then what its USB device says about itself."""
    details = [port.manufacturer, port.product, port.serial_number]
    described = ", ".join(dict.fromkeys(part for part in details if part))
    return f"{port.device} ({described})" if described else port.device


def _serial_port(path: str, ports: list[SerialPortInfo]) -> SerialPortInfo | None:
    """The listed port that ``path`` names: its stable path, its device node or a link to it."""
    resolved = os.path.realpath(path)
    for port in ports:
        if path in (port.device, port.resolved_device) or resolved == port.resolved_device:
            return port
    return None


def _same_port(path: str, others: list[str]) -> bool:
    """Whether ``path`` names the port of one of ``others`` (by a link or its device node)."""
    resolved = os.path.realpath(path)
    return any(path == other or resolved == os.path.realpath(other) for other in others)


def _usb_identity(vid: int, pid: int, serial_number: str) -> str:
    """What identifies a USB serial adapter in unique IDs, whichever port it is plugged into."""
    return f"usb-{vid:04X}:{pid:04X}-{serial_number}"


def _serial_data(path: str, port: SerialPortInfo | None) -> tuple[dict[str, Any], str]:
    """The entry data of a serial port, and the identity of the port for the unique ID.

    A USB port is known by its USB device (vendor, product, serial number), whatever path it
    gets; it is stored by its stable path, even when its device node was typed in. Other ports
    (a UART, a pseudo-terminal) are known by their path.
    """
    data: dict[str, Any] = {
        CONF_CONNECTION: CONNECTION_SERIAL,
        CONF_DEVICE: port.device if port else path,
    }
    if port is not None and port.product:
        data[CONF_PRODUCT] = port.product
    if port is not None and port.vid is not None and port.pid is not None and port.serial_number:
        return data, _usb_identity(port.vid, port.pid, port.serial_number)
    return data, f"{CONNECTION_SERIAL}-{data[CONF_DEVICE]}"


#: A host name (or an IPv4 address): labels of letters, digits, hyphens and underscores.
_HOST_NAME: Final = re.compile(
    r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?"
)
#: URL schemes of a web page: its port is the web server's, not the VBus interface's.
_WEB_SCHEMES: Final = frozenset({"http", "https"})


def parse_host(text: str, port: int) -> tuple[str, int]:
    """The host and the port in what was typed into the host field (``port``: the port field).

    Besides a host name or an IP address this takes "host:port" (that port wins), an IPv6
    address with or without brackets, and the address of the device's web page as a browser
    shows it, "http://192.168.1.5/" (its port is the web server's: the port field's stays).
    Raises ``ValueError`` for anything that names no host.
    """
    text = text.strip()
    try:  # a bare IPv6 address has colons that are no port separator
        return str(ipaddress.IPv6Address(text)), port
    except ValueError:
        pass
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    parts = urlsplit(f"//{rest}")
    if "@" in parts.netloc:  # credentials go into the password field, not into the address
        raise ValueError(text)
    host = parts.hostname or ""
    typed_port = parts.port  # ValueError when not a number in 0…65535
    if typed_port is not None and scheme.lower() not in _WEB_SCHEMES:
        port = typed_port
    if not 0 < port <= 65535:  # noqa: PLR2004 - the largest TCP port
        raise ValueError(port)
    if ":" in host:  # from brackets: an IPv6 address
        return str(ipaddress.IPv6Address(host)), port
    if not _HOST_NAME.fullmatch(host):
        raise ValueError(text)
    return host, port


def _local_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The connection data of a local device; a host field that names none is an error."""
    try:
        host, port = parse_host(user_input[CONF_HOST], user_input[CONF_PORT])
    except ValueError as err:
        raise _ProbeError(reason="invalid_host", field=CONF_HOST) from err
    return {
        CONF_CONNECTION: CONNECTION_LOCAL,
        CONF_HOST: host,
        CONF_PORT: port,
        CONF_PASSWORD: user_input[CONF_PASSWORD],
    }


def _vbusnet_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    tls = user_input[CONF_TLS]
    return {
        CONF_CONNECTION: CONNECTION_VBUSNET,
        CONF_HOST: VBUSNET_HOST,
        CONF_PORT: VBUSNET_TLS_PORT if tls else VBUSNET_PORT,
        CONF_PASSWORD: user_input[CONF_PASSWORD],
        CONF_VIA_TAG: user_input[CONF_VIA_TAG].strip(),
        CONF_TLS: tls,
    }


def _device_label(device: DiscoveredDevice) -> str:
    """How a device found on the network is listed: "DL3 001E660300F0 (192.168.1.5)"."""
    name = " ".join(part for part in (device.product, device.serial) if part)
    return f"{name} ({device.address})" if name else device.address


class ResolVBusConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle a config flow for RESOL VBus."""

    VERSION = 1
    # 1.2: no "language" option (names follow Home Assistant's language); see async_migrate_entry
    MINOR_VERSION = 2

    def __init__(self) -> None:
        """Start with nothing known about the device."""
        self._discovered: dict[str, DiscoveredDevice] = {}
        self._host: str | None = None  # host found by discovery, prefilled in the local step
        self._data: dict[str, Any] = {}  # connection data entered so far
        self._info: DeviceInformation | None = None
        self._device_id = ""  # the unique ID without the channel
        self._usb_title = ""  # what a VBus adapter found on USB will be called
        self._channels: list[Channel] = []

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: VBusConfigEntry) -> ResolVBusOptionsFlow:
        """Get the options flow for this handler."""
        return ResolVBusOptionsFlow()

    # -- user ----------------------------------------------------------------------------------

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Offer a search of the network, a local device by address, or VBus.net."""
        return self.async_show_menu(step_id="user", menu_options=_MENU)

    async def async_step_search(
        self,
        user_input: dict[str, Any] | None = None,  # noqa: ARG002 - a menu choice has no input
    ) -> ConfigFlowResult:
        """Search the network (UDP broadcast) only now that the user asked for it."""
        try:
            devices = await discover(
                DISCOVERY_TIMEOUT,
                broadcast=DISCOVERY_BROADCAST,
                port=DISCOVERY_PORT,
                http_ports=HTTP_PORTS,
                http_timeout=SEARCH_HTTP_TIMEOUT,
            )
        except VBusConnectionError:  # no UDP socket: no network
            _LOGGER.debug("LAN discovery failed", exc_info=True)
            devices = []
        self._discovered = {device.address: device for device in devices}
        if not devices:
            return self.async_show_menu(step_id="search", menu_options=_MENU)
        return await self.async_step_discovered()

    async def async_step_discovered(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Let the user pick one of the devices the UDP discovery found."""
        if user_input is not None:
            device = self._discovered[user_input[CONF_DEVICE]]
            serial = device.serial.upper() if device.serial else None
            return await self._async_discovered(device.address, serial)
        options = [
            SelectOptionDict(value=address, label=_device_label(device))
            for address, device in self._discovered.items()
        ]
        return self.async_show_form(
            step_id="discovered",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_DEVICE): SelectSelector(
                        SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN)
                    )
                }
            ),
        )

    async def async_step_local(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Connect to a device on the local network."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                self._data = _local_data(user_input)
                return await self._async_test_connection()
            except _ProbeError as err:
                errors[err.field] = err.reason
        elif self._host:
            user_input = {CONF_HOST: self._host}
        return self.async_show_form(
            step_id="local",
            data_schema=self.add_suggested_values_to_schema(LOCAL_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Connect to a serial port: one the system lists, or a path typed in."""
        errors: dict[str, str] = {}
        ports = await self.hass.async_add_executor_job(_serial_ports)
        if user_input is not None:
            path = str(user_input[CONF_DEVICE]).strip()
            # A device path, e.g. /dev/ttyUSB0; no path holds a NUL (os functions reject it).
            if not path.startswith("/") or "\0" in path:
                errors[CONF_DEVICE] = "invalid_serial_port"
            else:
                port = await self.hass.async_add_executor_job(_serial_port, path, ports)
                self._data, self._device_id = _serial_data(path, port)
                self._info = None
                if aborted := await self._async_check_serial_port():
                    return aborted
                try:
                    return await self._async_finish(0)
                except _ProbeError as err:
                    errors[err.field] = err.reason
        elif self.source == SOURCE_RECONFIGURE:
            user_input = {CONF_DEVICE: self._get_reconfigure_entry().data[CONF_DEVICE]}
        options = [SelectOptionDict(value=port.device, label=_port_label(port)) for port in ports]
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): SelectSelector(
                    SelectSelectorConfig(
                        options=options, custom_value=True, mode=SelectSelectorMode.DROPDOWN
                    )
                )
            }
        )
        return self.async_show_form(
            step_id=CONNECTION_SERIAL,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def _async_check_serial_port(self) -> ConfigFlowResult | None:
        """Abort when another entry uses this port or adapter; a moved entry keeps its ID.

        A reconfigured entry keeps its unique ID, from which its entities' IDs are made: the
        controller is the same, only the way to it changed.
        """
        own = self._get_reconfigure_entry() if self.source == SOURCE_RECONFIGURE else None
        others = [
            entry.data[CONF_DEVICE]
            for entry in self._async_current_entries(include_ignore=False)
            if entry is not own and entry.data.get(CONF_CONNECTION) == CONNECTION_SERIAL
        ]
        if await self.hass.async_add_executor_job(_same_port, self._data[CONF_DEVICE], others):
            return self.async_abort(reason="already_configured")
        if own is not None and own.unique_id:
            await self.async_set_unique_id(f"{self._device_id}-0", raise_on_progress=False)
            if self.unique_id != own.unique_id:
                self._abort_if_unique_id_configured()
            self._device_id = own.unique_id.rpartition("-")[0]
        return None

    async def async_step_vbusnet(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Connect to a device through VBus.net."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._data = _vbusnet_data(user_input)
            try:
                return await self._async_test_connection()
            except _ProbeError as err:
                errors[err.field] = err.reason
        return self.async_show_form(
            step_id=CONNECTION_VBUSNET,
            data_schema=self.add_suggested_values_to_schema(VBUSNET_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_channel(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the VBus channel of a DL3 (or of a device behind VBus.net)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                return await self._async_finish(int(user_input[CONF_CHANNEL]))
            except _ProbeError as err:
                errors["base"] = err.reason
        elif self.source == SOURCE_RECONFIGURE:
            user_input = {CONF_CHANNEL: str(self._get_reconfigure_entry().data[CONF_CHANNEL])}
        options = [
            SelectOptionDict(value=str(channel.number), label=f"{channel.number}: {channel.name}")
            for channel in self._channels
        ]
        return self.async_show_form(
            step_id=CONF_CHANNEL,
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_CHANNEL): SelectSelector(
                            SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN)
                        )
                    }
                ),
                user_input,
            ),
            errors=errors,
        )

    # -- discovery -----------------------------------------------------------------------------

    @override
    async def async_step_dhcp(self, discovery_info: DhcpServiceInfo) -> ConfigFlowResult:
        """Handle a RESOL device (MAC prefix 00:1E:66) found by DHCP; its MAC is its serial.

        The manifest's matcher covers RESOL's own OUI only: KM2 modules use other vendors' MAC
        prefixes (e.g. A8:40:41) that are not RESOL's to claim, so they are found by the UDP
        discovery of the "search" step instead.
        """
        serial = discovery_info.macaddress.replace(":", "").upper()
        await self.async_set_unique_id(serial)
        self._abort_if_unique_id_configured()  # the user ignored this device
        return await self._async_discovered(discovery_info.ip, serial)

    async def _async_discovered(self, host: str, serial: str | None) -> ConfigFlowResult:
        """Continue with a discovered device: update known entries, else ask for the password.

        The unique ID of an entry ends with the channel, so every entry of the device (one per
        channel of a DL3) gets the new host. A device found again by DHCP is done; one the user
        picked from the UDP discovery is done unless its entries name channels (a DL3 may offer
        more of them).
        """
        if serial:
            entries = [
                entry
                for entry in self._async_current_entries(include_ignore=False)
                if entry.data.get(CONF_SERIAL) == serial
            ]
            for entry in entries:
                self._async_update_host(entry, host)
            if entries and (
                self.source == SOURCE_DHCP
                or any(not entry.data.get(CONF_CHANNEL) for entry in entries)
            ):
                return self.async_abort(reason="already_configured")
        self._host = host
        # The card of a discovered device: "001E66E7A002 (192.168.1.5)". Its only placeholder
        # is "name", the one Home Assistant itself gives the re-authentication card.
        self.context["title_placeholders"] = {"name": f"{serial} ({host})" if serial else host}
        return await self.async_step_local()

    @callback
    def _async_update_host(self, entry: ConfigEntry, host: str) -> None:
        """Store a changed host and reload the entry, as ``_abort_if_unique_id_configured`` does."""
        if self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_HOST: host}
        ) and entry.state in (ConfigEntryState.LOADED, ConfigEntryState.SETUP_RETRY):
            self.hass.config_entries.async_schedule_reload(entry.entry_id)

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """A USB device with the ids of RESOL's VBus/USB adapter (see the manifest).

        The ids come from one user's report, not from RESOL: the device is offered only once its
        port has carried VBus data; anything else is dropped without a word.
        """
        ports = await self.hass.async_add_executor_job(_serial_ports)
        port = await self.hass.async_add_executor_job(_serial_port, discovery_info.device, ports)
        self._data, self._device_id = _serial_data(discovery_info.device, port)
        if port is None and discovery_info.serial_number:  # not listed (yet): the USB identity
            self._device_id = _usb_identity(
                int(discovery_info.vid, 16),
                int(discovery_info.pid, 16),
                discovery_info.serial_number,
            )
        await self.async_set_unique_id(f"{self._device_id}-0")
        self._abort_if_unique_id_configured(updates={CONF_DEVICE: self._data[CONF_DEVICE]})
        spec = await self.hass.async_add_executor_job(Specification.bundled)
        try:
            result = await _async_probe(
                connection_config(self._data), wait_for_data=True, spec=spec
            )
        except _ProbeError:
            return self.async_abort(reason="not_vbus_port")
        self._data[CONF_CHANNEL] = 0
        self._usb_title = self._title(result, self._data)
        self.context["title_placeholders"] = {"name": self._usb_title}
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before adding a VBus adapter found on USB."""
        if user_input is not None:
            return await self._async_finish(0)
        self._set_confirm_only()
        return self.async_show_form(
            step_id="usb_confirm",
            description_placeholders={
                "name": self._usb_title,
                "port": self._data[CONF_DEVICE],
            },
        )

    # -- reauthentication and reconfiguration --------------------------------------------------

    async def async_step_reauth(
        self,
        entry_data: Mapping[str, Any],  # noqa: ARG002 - the entry is read in the next step
    ) -> ConfigFlowResult:
        """The device rejected the stored password."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the new password and check it."""
        errors: dict[str, str] = {}
        entry = self._get_reauth_entry()
        if user_input is not None:
            data = {**entry.data, CONF_PASSWORD: user_input[CONF_PASSWORD]}
            try:
                await _async_probe(connection_config(data), wait_for_data=False)
            except _ProbeError as err:
                errors["base"] = err.reason
            else:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_PASSWORD: user_input[CONF_PASSWORD]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_SCHEMA,
            description_placeholders={"host": entry.data.get(CONF_HOST, "")},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the connection (and the channel) of an entry."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        if entry.data[CONF_CONNECTION] == CONNECTION_SERIAL:
            return await self.async_step_serial()
        local = entry.data[CONF_CONNECTION] == CONNECTION_LOCAL
        if user_input is not None:
            try:
                self._data = _local_data(user_input) if local else _vbusnet_data(user_input)
                return await self._async_test_connection()
            except _ProbeError as err:
                errors[err.field] = err.reason
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                # An entry keeps its encryption unless the user changes it.
                LOCAL_SCHEMA if local else _vbusnet_schema(tls=bool(entry.data.get(CONF_TLS))),
                user_input if user_input is not None else entry.data,
            ),
            errors=errors,
        )

    # -- the connection test ---------------------------------------------------------------------

    async def _async_test_connection(self) -> ConfigFlowResult:
        """Authenticate and list the channels; then choose a channel or finish."""
        if self._data.get(CONF_VIA_TAG) == "":
            # Without a via tag the client skips CONNECT and VBus.net rejects the password.
            raise _ProbeError(reason="invalid_via_tag")
        result = await _async_probe(connection_config(self._data), wait_for_data=False)
        self._info = None
        if self._data[CONF_CONNECTION] == CONNECTION_VBUSNET:
            self._device_id = vbusnet_device_id(self._data[CONF_VIA_TAG])
        else:
            self._info = await fetch_device_information(
                self._data[CONF_HOST], HTTP_PORTS, HTTP_TIMEOUT
            )
            serial = self._info.serial.upper() if self._info and self._info.serial else None
            if self.source == SOURCE_RECONFIGURE:
                serial = await self._async_check_same_device(serial)
            self._device_id = serial or self._data[CONF_HOST].lower()
        if not result.channels:
            return await self._async_finish(0)
        # Channels that other entries already use are not offered again.
        own = self._get_reconfigure_entry() if self.source == SOURCE_RECONFIGURE else None
        taken = {
            entry.unique_id
            for entry in self._async_current_entries(include_ignore=False)
            if entry is not own
        }
        self._channels = [
            channel
            for channel in result.channels
            if f"{self._device_id}-{channel.number}" not in taken
        ]
        if not self._channels:
            return self.async_abort(reason="already_configured")
        return await self.async_step_channel()

    async def _async_check_same_device(self, serial: str | None) -> str | None:
        """Abort a reconfiguration that reaches another device than the entry's.

        Only possible where the entry knows its serial. Without device information now, the
        entry keeps its serial (and so its unique ID); the channel may still change later.
        """
        entry = self._get_reconfigure_entry()
        if known := entry.data.get(CONF_SERIAL):
            serial = serial or known
            await self.async_set_unique_id(f"{serial}-{entry.data[CONF_CHANNEL]}")
            self._abort_if_unique_id_mismatch()
        return serial

    async def _async_finish(self, channel: int) -> ConfigFlowResult:
        """Wait for VBus data on ``channel``; create or update the entry."""
        unique_id = f"{self._device_id}-{channel}"
        await self.async_set_unique_id(unique_id, raise_on_progress=False)
        if self.source != SOURCE_RECONFIGURE or unique_id != (
            self._get_reconfigure_entry().unique_id
        ):
            self._abort_if_unique_id_configured()
        data = {**self._data, CONF_CHANNEL: channel}
        spec = await self.hass.async_add_executor_job(Specification.bundled)
        result = await _async_probe(connection_config(data), wait_for_data=True, spec=spec)
        if self._info is not None:
            known = {
                CONF_SERIAL: self._info.serial and self._info.serial.upper(),
                CONF_PRODUCT: self._info.product,
                CONF_FIRMWARE: self._info.version,
            }
            data.update({key: value for key, value in known.items() if value})
        if (
            not data.get(CONF_PRODUCT)
            and data[CONF_CONNECTION] == CONNECTION_LOCAL
            and (result.channels)
        ):
            # No device information, but it answered CHANNELLIST: of RESOL's devices only a
            # DL3 has VBus channels.
            data[CONF_PRODUCT] = _CHANNEL_PRODUCT
        if self.source == SOURCE_RECONFIGURE:
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), unique_id=unique_id, data_updates=data
            )
        return self.async_create_entry(title=self._title(result, data), data=data)

    def _title(self, result: ProbeResult, data: Mapping[str, Any]) -> str:
        """E.g. "DeltaSol MX via DL3 192.168.1.5 channel 1", from the first device that sent data.

        Local devices are named with their address, so that two entries differ (their device
        names end with the title when there are several entries).
        """
        if data[CONF_CONNECTION] == CONNECTION_VBUSNET:
            adapter = _VBUSNET_PRODUCT
        elif data[CONF_CONNECTION] == CONNECTION_SERIAL:
            adapter = hub_name(data)
        else:
            adapter = f"{data.get(CONF_PRODUCT) or _LOCAL_PRODUCT} {data[CONF_HOST]}"
        # A probe that waited for data saw at least the sender of the first packet.
        controller = result.devices[0].name.partition("[")[0].strip()
        title = f"{controller} via {adapter}"
        channel = data[CONF_CHANNEL]
        return f"{title} channel {channel}" if channel else title


class ResolVBusOptionsFlow(OptionsFlowWithReload):
    """Settings of an entry; changing them reloads it."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Minimum interval between state writes, value reads and writes."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, self.config_entry.options
            ),
        )
