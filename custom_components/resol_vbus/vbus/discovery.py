"""LAN discovery of RESOL devices: UDP broadcast query plus the HTTP device information.

Client side (:func:`discover`, :func:`fetch_device_information`):

1. Send the 27 bytes ``---RESOL-BROADCAST-QUERY---`` to ``broadcast:port`` (UDP, by default
   three times 500 ms apart) and collect replies until ``timeout`` seconds after the first query.
   A reply counts when it comes from the query port, is at least 27 bytes long and starts with
   ``---RESOL-BROADCAST-REPLY---``; devices are de-duplicated by IP address.
2. For every address ``GET /cgi-bin/get_resol_device_information`` over plain HTTP/1.0 on port 80,
   falling back to 3000 (10 s per request; anything but status 200 is a failure), and parse the
   ``key = "value"`` lines of the body.

Everything the network feeds is bounded (see the constants): responders kept, concurrent HTTP
look-ups, bytes per response and the time of every request; parsing is linear in its input.

Decision where the references leave a choice: a device that answered the UDP query but whose HTTP
information could not be fetched is **kept**, with only its address (all other fields ``None``).
The reference library drops such devices silently, but VBus/LAN adapters are reported to lack the
HTTP endpoint (resol-vbus #73), so dropping them would hide real devices from the user.

Responder side (used by the emulator): :class:`DiscoveryResponder` answers the UDP query and
:class:`DeviceInformationServer` serves the information text over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Self

from .errors import VBusConnectionError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

_LOGGER = logging.getLogger(__name__)

QUERY: Final = b"---RESOL-BROADCAST-QUERY---"
REPLY: Final = b"---RESOL-BROADCAST-REPLY---"
DISCOVERY_PORT: Final = 7053
HTTP_PORTS: Final = (80, 3000)
INFORMATION_PATH: Final = "/cgi-bin/get_resol_device_information"
HTTP_TIMEOUT: Final = 10.0  # seconds per HTTP request, connecting and closing included
# Bytes of one HTTP answer (head and body); an information page is a few hundred bytes.
MAX_RESPONSE: Final = 65536
# Addresses kept from one query: a /24 has 254 hosts but a LAN has few RESOL devices, and forged
# replies from many addresses must grow neither memory nor the number of HTTP look-ups.
MAX_RESPONDERS: Final = 64
# HTTP look-ups running at once in discover(): few sockets, a known worst-case duration.
MAX_CONCURRENT_LOOKUPS: Final = 8
# The reference's ``(\w+)\s*=\s*"([^"\r\n]*)"`` (global), made linear: a key starts only where
# no word character precedes it, and no quantifier gives back what it took. Backtracking could
# never have made a match there (what follows each run cannot start the run's next part), so the
# matches are the same; the original retried every suffix of a word run, quadratic in its length.
_KEY_VALUE: Final = re.compile(r'(?<!\w)(\w++)\s*+=\s*+"([^"\r\n]*+)"')
_KEYS: Final = ("vendor", "product", "serial", "version", "build", "name", "features")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInformation:
    """What ``/cgi-bin/get_resol_device_information`` tells about a device.

    Missing keys are ``None``; ``features`` is the comma-separated ``features`` value split up;
    ``raw`` holds every key/value pair of the body as sent.
    """

    vendor: str | None = None
    product: str | None = None
    serial: str | None = None
    version: str | None = None
    build: str | None = None
    name: str | None = None
    features: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def parse(cls, text: str) -> DeviceInformation:
        """Parse the ``key = "value"`` lines of an information body (in linear time)."""
        raw = dict(_KEY_VALUE.findall(text))
        features = tuple(part.strip() for part in raw.get("features", "").split(","))
        return cls(
            vendor=raw.get("vendor"),
            product=raw.get("product"),
            serial=raw.get("serial"),
            version=raw.get("version"),
            build=raw.get("build"),
            name=raw.get("name"),
            features=tuple(part for part in features if part),
            raw=raw,
        )

    def to_text(self) -> str:
        """The information body as a device sends it (one ``key = "value"`` line per key)."""
        values = {key: getattr(self, key) for key in _KEYS[:-1]}
        values["features"] = ",".join(self.features) if self.features else None
        return "".join(f'{key} = "{value}"\n' for key, value in values.items() if value is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredDevice(DeviceInformation):
    """A device found on the LAN: its IP ``address`` plus its information (when available)."""

    address: str

    @classmethod
    def from_information(cls, address: str, information: DeviceInformation | None) -> Self:
        """Combine an address with the information fetched from it (``None``: address only)."""
        if information is None:
            return cls(address=address)
        values = {key: getattr(information, key) for key in _KEYS}
        return cls(address=address, raw=dict(information.raw), **values)

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict (``features`` as a list)."""
        values: dict[str, object] = {key: getattr(self, key) for key in _KEYS}
        values["features"] = list(self.features)
        return {"address": self.address, **values, "raw": dict(self.raw)}


# -- client -----------------------------------------------------------------------------------


class _QueryProtocol(asyncio.DatagramProtocol):
    """Collects the addresses of valid replies, in order of arrival, without duplicates.

    Keeps the first :data:`MAX_RESPONDERS` addresses; more are ignored, with one warning.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.addresses: dict[str, None] = {}
        self.overflowed = False

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        address = str(addr[0])
        if addr[1] != self.port or not data.startswith(REPLY) or address in self.addresses:
            return
        if len(self.addresses) < MAX_RESPONDERS:
            self.addresses[address] = None
        elif not self.overflowed:
            self.overflowed = True
            _LOGGER.warning(
                "More than %d addresses answered the discovery query; ignoring the others "
                "(forged replies?)",
                MAX_RESPONDERS,
            )

    def error_received(self, exc: Exception) -> None:
        """Sending can fail (no route for the broadcast); later tries may still work."""


async def find_addresses(
    timeout: float = 1.5,  # noqa: ASYNC109 - the listening window, not a cancellation timeout
    *,
    broadcast: str = "255.255.255.255",
    port: int = DISCOVERY_PORT,
    tries: int = 3,
    interval: float = 0.5,
) -> list[str]:
    """Broadcast the query and return the IP addresses that replied (UDP step only).

    The query is sent ``tries`` times ``interval`` seconds apart; replies are collected until
    ``timeout`` seconds after the first query; at most :data:`MAX_RESPONDERS` addresses are
    returned. Raises :class:`~.errors.VBusConnectionError` when no UDP socket can be opened (no
    network); a query that cannot be sent only finds nothing.
    """
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _QueryProtocol(port), family=socket.AF_INET, allow_broadcast=True
        )
    except OSError as err:
        msg = f"Cannot open a UDP socket for the discovery: {err.strerror or err}"
        raise VBusConnectionError(msg) from err
    try:
        deadline = loop.time() + timeout
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(max(0.0, min(interval, deadline - loop.time())))
            if loop.time() >= deadline:
                break
            transport.sendto(QUERY, (broadcast, port))
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    finally:
        transport.close()
    return list(protocol.addresses)


async def _http_get(host: str, port: int, path: str, seconds: float) -> str | None:
    """The body of a ``200`` answer to ``GET path`` (HTTP/1.0), or ``None`` on any failure.

    Reads at most :data:`MAX_RESPONSE` + 1 bytes; everything, closing included, within
    ``seconds``.
    """
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                writer.write(request.encode("ascii"))
                await writer.drain()
                response = bytearray()
                while chunk := await reader.read(MAX_RESPONSE + 1 - len(response)):
                    response += chunk
                    if len(response) > MAX_RESPONSE:
                        return None
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, UnicodeError):
        return None
    head, separator, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if not separator or len(status) < 2 or not status[0].startswith(b"HTTP/"):
        return None
    if status[1] != b"200":
        return None
    return body.decode("utf-8", "replace")


async def fetch_device_information(
    host: str,
    ports: Sequence[int] = HTTP_PORTS,
    timeout: float = HTTP_TIMEOUT,  # noqa: ASYNC109 - per request, as the reference does
) -> DeviceInformation | None:
    """Fetch and parse the device information of ``host``, trying ``ports`` in order.

    Each request may take ``timeout`` seconds; returns ``None`` when every port failed (any
    I/O error, timeout, answer over :data:`MAX_RESPONSE` bytes or status other than 200).
    """
    for port in ports:
        body = await _http_get(host, port, INFORMATION_PATH, timeout)
        if body is not None:
            return DeviceInformation.parse(body)
    return None


async def discover(
    timeout: float = 1.5,  # noqa: ASYNC109 - the listening window, not a cancellation timeout
    *,
    broadcast: str = "255.255.255.255",
    port: int = DISCOVERY_PORT,
    tries: int = 3,
    interval: float = 0.5,
    http_ports: Sequence[int] = HTTP_PORTS,
    http_timeout: float = HTTP_TIMEOUT,
) -> list[DiscoveredDevice]:
    """Find RESOL devices on the LAN; sorted by address.

    ``broadcast`` and ``port`` say where the UDP query goes (tests use ``127.0.0.1`` and the
    emulator's port; never a real broadcast). Devices whose HTTP information cannot be fetched
    are kept with their address only. At most :data:`MAX_CONCURRENT_LOOKUPS` devices are looked
    up at once, so the whole call takes at most ``timeout + ceil(responders /
    MAX_CONCURRENT_LOOKUPS) × len(http_ports) × http_timeout`` seconds (responders ≤
    :data:`MAX_RESPONDERS`; with the defaults 1.5 + 8 × 2 × 10 = 161.5 s, reached only when 64
    hosts answer the query and then leave every request hanging). Raises
    :class:`~.errors.VBusConnectionError` only when no UDP socket can be opened.
    """
    addresses = await find_addresses(
        timeout, broadcast=broadcast, port=port, tries=tries, interval=interval
    )
    lookups = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)

    async def look_up(address: str) -> DeviceInformation | None:
        async with lookups:
            return await fetch_device_information(address, http_ports, http_timeout)

    informations = await asyncio.gather(*(look_up(address) for address in addresses))
    devices = [
        DiscoveredDevice.from_information(address, information)
        for address, information in zip(addresses, informations, strict=True)
    ]
    return sorted(devices, key=lambda device: ipaddress.ip_address(device.address))


# -- responder side (emulator) ------------------------------------------------------------------


class DiscoveryResponder(asyncio.DatagramProtocol):
    """Answers the exact query string with the reply string, to the sender's address and port."""

    def __init__(self) -> None:
        """Create an unbound responder; see :meth:`start`."""
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    @classmethod
    async def start(cls, host: str, port: int) -> DiscoveryResponder:
        """Bind a responder to ``host:port`` (0 picks a free port, see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return protocol

    @property
    def port(self) -> int:
        """The UDP port the responder listens on."""
        assert self.transport is not None  # noqa: S101 - only called after start()
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer through."""
        assert isinstance(transport, asyncio.DatagramTransport)  # noqa: S101
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Answer a query."""
        if data == QUERY and self.transport is not None:
            self.queries += 1
            self.transport.sendto(REPLY, addr)

    def close(self) -> None:
        """Stop answering."""
        if self.transport is not None:
            self.transport.close()


class DeviceInformationServer:
    """A minimal HTTP/1.0 server for ``GET /cgi-bin/get_resol_device_information``.

    Other paths and methods get ``404``; a request must arrive within 10 s.
    """

    def __init__(self, information: DeviceInformation) -> None:
        """Serve ``information`` (start with :meth:`start`)."""
        self.information = information
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0 picks a free port, see :attr:`port`)."""
        self._server = await asyncio.start_server(self._handle, host, port)

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        assert self._server is not None  # noqa: S101 - only called after start()
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Close the server and every open request."""
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        self._handlers.add(task)
        try:
            async with asyncio.timeout(HTTP_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            request = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = request[1].split("?", 1)[0] if len(request) >= 2 else ""
            if request[:1] == ["GET"] and path == INFORMATION_PATH:
                status, body = "200 OK", self.information.to_text().encode("utf-8")
            else:
                status, body = "404 Not Found", b"Not Found\n"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


# -- command line -----------------------------------------------------------------------------


def _text_line(device: DiscoveredDevice) -> str:
    columns = (device.address, device.product, device.serial, device.name, device.version)
    return "  ".join(value or "-" for value in columns)


def _cmd_discover(args: argparse.Namespace) -> int:
    devices = asyncio.run(
        discover(
            args.timeout,
            broadcast=args.broadcast,
            port=args.port,
            interval=min(0.5, args.timeout / 3),
            http_ports=tuple(args.http_port or HTTP_PORTS),
        )
    )
    if not devices:
        # JSON lines stay parseable: the note goes to stderr there.
        (sys.stderr if args.json else sys.stdout).write("no devices found\n")
    for device in devices:
        line = json.dumps(device.as_json(), ensure_ascii=False) if args.json else _text_line(device)
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Define the options of the ``discover`` command."""
    parser.add_argument("--timeout", type=float, default=1.5, help="seconds to wait for replies")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")
    parser.add_argument(
        "--broadcast", default="255.255.255.255", help="where the query goes (default: broadcast)"
    )
    parser.add_argument("--port", type=int, default=DISCOVERY_PORT, help="UDP query port")
    parser.add_argument(
        "--http-port",
        type=int,
        action="append",
        help="HTTP port(s) for the device information, tried in order (default: 80, 3000)",
    )
    parser.set_defaults(handler=_cmd_discover)
