"""The TCP server: the emulator itself, its channels and their timelines, start, reboot and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from ..aio import cancel_and_wait
from ..discovery import DeviceInformation, DeviceInformationServer, DiscoveryResponder
from ..protocol import LIVE_DESTINATION, Datagram, Packet
from ..session import DEFAULT_PASSWORD
from .connection import CHANNEL_COMMANDS, COMMANDS, PRODUCTS, Connection, Personality
from .controller import Changes, ControllerSimulator
from .faults import Faults
from .serial import SerialPort
from .sources import DL3_ADDRESS
from .synthetic import SyntheticSource

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

    from ..protocol import Frame
    from .sources import ChannelSource, Cycle

_LOGGER = logging.getLogger(__name__)

_LINE_LIMIT: Final = 4096


class Channel:
    """One VBus channel at runtime: its source's timeline, its controller, its clients."""

    def __init__(
        self,
        emulator: Emulator,
        number: int,
        source: ChannelSource,
        controller: ControllerSimulator | None,
    ) -> None:
        """Channel ``number``: the timeline of ``source``, the bus of ``controller``."""
        self.emulator = emulator
        self.number = number
        self.source = source
        self.controller = controller
        self.clients: set[Connection] = set()
        self.last_cycle: tuple[bytes, ...] = ()
        self._cycles: Iterator[Cycle] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        if controller is not None:
            controller.send = self.broadcast
            controller.on_release = self._wake.set

    def _bus_free(self) -> bool:
        return self.controller is None or self.controller.master is None

    def attach(self, client: Connection, prefix: bytes) -> None:
        """Add a client in data mode; ``prefix`` goes out in the same write as current packets."""
        self.clients.add(client)
        if self._cycles is None:
            self._cycles = self.source.cycles()
            first = next(self._cycles, None)
            if first is not None:
                self.last_cycle = first.units
            self._task = asyncio.get_running_loop().create_task(self._pump())
            if self.controller is not None:
                self.controller.start()
        client.send(self.last_cycle if self._bus_free() else (), prefix)

    def detach(self, client: Connection) -> None:
        """Remove a client: it gets no more data."""
        self.clients.discard(client)

    def broadcast(self, units: tuple[bytes, ...], *, sender: Connection | None = None) -> None:
        """Send ``units`` to every client in data mode but ``sender``."""
        for client in list(self.clients):
            if client is not sender:
                client.send(units)

    def from_client(self, client: Connection, frame: Frame) -> None:
        """A client put ``frame`` on the bus: others see it, the controller may act on it."""
        self.broadcast((frame.encode(),), sender=client)
        if isinstance(frame, Datagram) and self.controller is not None:
            self.controller.receive(frame)

    async def _pump(self) -> None:
        assert self._cycles is not None  # noqa: S101 - set by attach()
        for cycle in self._cycles:
            if cycle.delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cycle.delay / self.emulator.speed):
                        await self._wake.wait()
            if self.controller is not None:
                await self.controller.wait_bus_free()
            self._wake.clear()
            self.last_cycle = cycle.units
            self.broadcast(cycle.units)
            await asyncio.sleep(0)

    def partial_frame(self) -> bytes:
        """The first half of a frame, for closes that cut a frame."""
        frame = (
            self.last_cycle[0] if self.last_cycle else Packet(LIVE_DESTINATION, 0, 0x100).encode()
        )
        return frame[: max(1, len(frame) // 2)]

    async def stop(self) -> None:
        """Stop the timeline and the controller."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.controller is not None:
            await self.controller.stop()


class Emulator:
    """A RESOL LAN device on a TCP port, with controllers behind it (see the package docs).

    ``channels`` maps VBus channel numbers (0…6) to sources; ``offer_interval`` (seconds,
    ``None`` = never), ``offer_window`` and ``bus_timeout`` configure every controller, ``speed``
    scales the sources' timelines. ``discovery_port`` / ``http_port`` (0 = any free port) switch
    on the LAN discovery responders, on ``host``.
    """

    def __init__(
        self,
        *,
        personality: Personality = Personality.DL2,
        password: str = DEFAULT_PASSWORD,
        via_tags: Sequence[str] = ("mylogger",),
        channels: Mapping[int, ChannelSource] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        offer_interval: float | None = 1.0,
        speed: float = 1.0,
        offer_window: float = 0.4,
        bus_timeout: float = 10.0,
        faults: Faults | None = None,
        serial: str | None = None,
        discovery_port: int | None = None,
        http_port: int | None = None,
    ) -> None:
        """Configure the device; nothing runs before :meth:`start`."""
        self.personality = Personality(personality)
        self.password = password
        self.via_tags = tuple(via_tags)
        self.host = host
        self.port = port
        self.speed = speed
        self.discovery_port = discovery_port
        self.http_port = http_port
        self._faults = faults if faults is not None else Faults()
        sources = dict(channels) if channels is not None else {1: SyntheticSource()}
        if self.personality == Personality.DL3 and 0 not in sources:
            sources[0] = SyntheticSource(DL3_ADDRESS, name="DL3")
        if not sources or any(not 0 <= number <= 6 for number in sources):
            msg = f"channels must be numbered 0..6, got {sorted(sources)}"
            raise ValueError(msg)
        if self.personality not in (Personality.DL3, Personality.VBUSNET) and len(sources) != 1:
            msg = f"a {self.personality.value} has exactly one channel, got {len(sources)}"
            raise ValueError(msg)
        self._channels: dict[int, Channel] = {}
        for number, source in sorted(sources.items()):
            address = source.controller_address
            controller = None
            # No bus master on a DL3's channel 0 (its own inputs) or without a controller.
            if address is not None and not (self.personality == Personality.DL3 and number == 0):
                controller = ControllerSimulator(
                    address,
                    offer_interval=offer_interval,
                    offer_window=offer_window,
                    bus_timeout=bus_timeout,
                    faults=self._faults,
                )
            self._channels[number] = Channel(self, number, source, controller)
        commands = set(COMMANDS)
        if self.personality in (Personality.DL3, Personality.VBUSNET):
            commands |= CHANNEL_COMMANDS
        if self.personality == Personality.VBUSNET:
            commands.add("CONNECT")
        self.commands = frozenset(commands)
        product = PRODUCTS[self.personality]
        serial = serial or product.serial
        self.information = DeviceInformation(
            vendor="RESOL",
            product=product.product,
            serial=serial,
            version=product.version,
            build=product.build,
            name=f"{product.product}-{serial}",
            features=product.features,
        )
        if self.personality == Personality.VBUSNET:
            self.greeting = "This is VBus.net on behalf of all its devices, welcome, stranger!"
        else:
            self.greeting = f"This is {self.information.name}, at your service!"
        self.reboots = 0
        self._stopping = False
        self._server: asyncio.Server | None = None
        self._connections: dict[Connection, asyncio.Task[None]] = {}
        self._changes = Changes()
        self._responder: DiscoveryResponder | None = None
        self._http: DeviceInformationServer | None = None
        self._serial: SerialPort | None = None

    # configuration -----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults in effect (shared by the connections and every controller)."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        for channel in self._channels.values():
            if channel.controller is not None:
                channel.controller.faults = faults

    @property
    def default_channel(self) -> int:
        """The channel ``DATA`` streams without ``CHANNEL``: 0 on a DL3, else the lowest."""
        return min(self._channels)

    @property
    def channel_names(self) -> dict[int, str]:
        """Names of the channels ≥ 1, as ``CHANNELLIST`` lists them."""
        return {n: channel.source.name for n, channel in self._channels.items() if n >= 1}

    def __contains__(self, channel: object) -> bool:
        """Whether the emulator has VBus channel ``channel``."""
        return channel in self._channels

    @property
    def controllers(self) -> dict[int, ControllerSimulator]:
        """The controllers by channel (channels without a bus master are left out)."""
        return {n: c.controller for n, c in self._channels.items() if c.controller is not None}

    def controller(self, channel: int = 1) -> ControllerSimulator:
        """The controller (bus master) of ``channel``; ``KeyError`` when it has none."""
        controller = self._channels[channel].controller
        if controller is None:
            msg = f"channel {channel} has no controller"
            raise KeyError(msg)
        return controller

    @property
    def connections(self) -> int:
        """Number of open client connections."""
        return len(self._connections)

    async def wait_connections(self, count: int) -> None:
        """Wait until exactly ``count`` client connections are open."""
        await self._changes.wait_for(lambda: len(self._connections) == count)

    # serial port -------------------------------------------------------------------------

    async def open_serial(self, link: str | os.PathLike[str], channel: int = 1) -> str:
        """Serve ``channel`` on a new pseudo-terminal: a serial VBus adapter at ``link``.

        ``link`` becomes a symlink to the terminal (an existing one is replaced, as udev does
        with ``/dev/serial/by-id/…``). The port streams like a raw client in data mode, the
        connection faults included; frames written to it reach the controller. An open port is
        unplugged first. Works with or without :meth:`start`; :meth:`stop` unplugs it.
        """
        if channel not in self._channels:
            msg = f"no channel {channel}; the emulator has {sorted(self._channels)}"
            raise ValueError(msg)
        await self.close_serial()
        self._serial = await SerialPort.open(self, Path(link), channel)
        return str(link)

    async def close_serial(self) -> None:
        """Unplug the serial port (if any): its terminal closes, the link goes away."""
        port, self._serial = self._serial, None
        if port is not None:
            await port.close()

    @property
    def serial_port(self) -> SerialPort | None:
        """The serial port of :meth:`open_serial` while it is open (``inject()`` writes noise)."""
        return self._serial if self._serial is not None and self._serial.is_open else None

    # life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for clients (and discovery, when configured)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_LINE_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.discovery_port is not None:
            self._responder = await DiscoveryResponder.start(self.host, self.discovery_port)
            self.discovery_port = self._responder.port
        if self.http_port is not None:
            self._http = DeviceInformationServer(self.information)
            await self._http.start(self.host, self.http_port)
            self.http_port = self._http.port
        _LOGGER.debug("emulating %s on %s:%s", self.personality.value, self.host, self.port)

    async def stop(self) -> None:
        """Close every connection and server; stop all timelines. No task is left behind."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # let connections accepted just now start (and see _stopping)
        await self._close_connections()
        await self.close_serial()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for channel in self._channels.values():
            await channel.stop()
        if self._responder is not None:
            self._responder.close()
            self._responder = None
        if self._http is not None:
            await self._http.stop()
            self._http = None

    async def reboot(self, downtime: float = 0.0) -> None:
        """Reboot the logger: close every connection; refuse new ones for ``downtime`` seconds.

        New connections get a new ``+HELLO``. The controllers behind the logger keep running.
        """
        self.reboots += 1
        if downtime > 0 and self._server is not None:
            self._server.close()
            await self._close_connections()
            await self._server.wait_closed()
            await asyncio.sleep(downtime)
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, limit=_LINE_LIMIT
            )
        else:
            await self._close_connections()

    async def _close_connections(self) -> None:
        for connection in list(self._connections):
            connection.close()
        tasks = list(self._connections.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> Self:
        """Start; the emulator stops when the block ends."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        connection = Connection(self, reader, writer)
        if self._stopping:
            connection.close(partial=False)
            return
        self._connections[connection] = task
        self._changes.notify()
        try:
            await connection.serve()
        finally:
            del self._connections[connection]
            self._changes.notify()

    def describe(self) -> str:
        """The one-line banner of the ``emulate`` command."""
        if self.personality == Personality.RAW:
            access = "no handshake"
        elif self.password == DEFAULT_PASSWORD:
            access = f"password {DEFAULT_PASSWORD}"
        else:
            access = "custom password"  # never echo a password the user chose
        return f"emulating {self.personality.value} on {self.host}:{self.port} ({access})"
