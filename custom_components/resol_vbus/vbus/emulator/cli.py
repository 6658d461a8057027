"""The ``emulate`` command: its options, the emulator they describe, and running it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import signal
import socket
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from ..discovery import HTTP_PORTS
from ..session import DEFAULT_PASSWORD
from .connection import PRODUCTS, Personality
from .faults import Faults
from .server import Emulator
from .sources import LiveCaptureSource, RecordingSource
from .store import ParameterStore
from .synthetic import SyntheticSource, resolve_controller

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

    from .sources import ChannelSource


def _channels_from_args(
    args: argparse.Namespace, personality: Personality, store: ParameterStore | None
) -> dict[int, ChannelSource]:
    if args.recording:
        data = Path(args.recording).read_bytes()
        if personality == Personality.DL3:
            return {n: RecordingSource(data, channel=n) for n in RecordingSource.channels_in(data)}
        return {1: RecordingSource(data)}
    if args.live:
        return {1: LiveCaptureSource(Path(args.live).read_bytes())}
    if args.controller:
        return {1: SyntheticSource(resolve_controller(args.controller))}
    address = store.address if store is not None and store.address is not None else 0x7E11
    return {1: SyntheticSource(address)}


# The ``emulate`` command serves the device information where Home Assistant and ``discover`` look
# for it after port 80 (which needs root), unless that port is taken: then on any free port.
CLI_HTTP_PORT: Final = HTTP_PORTS[-1]


def cli_serial(personality: Personality, host: str, port: int) -> str:
    """The serial (MAC address) the ``emulate`` command reports unless ``--serial`` is given.

    The personality's vendor prefix, one byte of ``host`` (the last of an IP address) and the
    TCP ``port``: ``001E66011B8D`` for a DL3 on 127.0.0.1:7053. So every emulator listening on
    the same machine has a serial of its own, and with it a unique ID in Home Assistant.
    """
    try:
        host_byte = ipaddress.ip_address(host).packed[-1]
    except ValueError:  # a host name
        host_byte = zlib.crc32(host.encode()) & 0xFF
    return f"{PRODUCTS[personality].serial[:6]}{host_byte:02X}{port & 0xFFFF:04X}"


def _bindable(host: str, port: int) -> int | None:
    """The port a server on ``host`` would get for ``port`` (0: any) now; ``None`` if taken."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as sock:
            # As asyncio's servers do: connections in TIME_WAIT do not keep a port taken.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            bound: int = sock.getsockname()[1]
    except OSError:
        return None
    return bound


def _http_port_option(text: str) -> int | Literal["auto"] | None:
    """``--http-port``: a port number, ``auto`` or ``off``."""
    if text == "auto":
        return "auto"
    return None if text == "off" else int(text)


def build_emulator(args: argparse.Namespace) -> Emulator:
    """The emulator the ``emulate`` options describe.

    Unless the options say otherwise, each one gets a serial of its own (:func:`cli_serial`; for
    ``--port 0`` a free port is chosen here, so the serial can name it) and serves its device
    information on :data:`CLI_HTTP_PORT` of its host, or on any free port when that is taken.
    """
    personality = Personality(args.personality)
    port = args.port or _bindable(args.host, 0) or 0
    http_port = args.http_port
    if http_port == "auto":
        http_port = CLI_HTTP_PORT if _bindable(args.host, CLI_HTTP_PORT) else 0
    store = None
    if args.values:
        store = ParameterStore.from_controller_values(Path(args.values).read_bytes())
    faults = Faults(**{knob.name: getattr(args, knob.name) for knob in dataclasses.fields(Faults)})
    emulator = Emulator(
        personality=personality,
        password=args.password,
        via_tags=args.via_tag or ("mylogger",),
        channels=_channels_from_args(args, personality, store),
        host=args.host,
        port=port,
        offer_interval=args.offer_interval if args.offer_interval > 0 else None,
        speed=args.speed,
        bus_timeout=args.bus_timeout,
        faults=faults,
        serial=args.serial or cli_serial(personality, args.host, port),
        discovery_port=args.discovery_port,
        http_port=http_port,
    )
    controllers = emulator.controllers
    if store is not None and controllers:
        controllers[min(controllers)].store = store
    return emulator


async def serve(
    emulator: Emulator,
    out: TextIO,
    stop: asyncio.Event | None = None,
    *,
    serial_link: str | None = None,
) -> int:
    """Run ``emulator`` until ``stop`` is set or SIGINT/SIGTERM arrives; print where it listens.

    With ``serial_link``, the lowest VBus channel is also served on a pseudo-terminal there.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with emulator:
            lines = [emulator.describe()]
            lines += [f"  channel {n}: {name}" for n, name in emulator.channel_names.items()]
            if serial_link is not None:
                channel = min(emulator.channel_names, default=emulator.default_channel)
                path = await emulator.open_serial(serial_link, channel)
                lines.append(f"  serial port: {path} (channel {channel}, no handshake)")
            if emulator.discovery_port is not None:
                lines.append(f"  discovery: UDP {emulator.host}:{emulator.discovery_port}")
            if emulator.http_port is not None:
                lines.append(f"  device information: HTTP {emulator.host}:{emulator.http_port}")
            out.write("\n".join(lines) + "\n")
            out.flush()
            await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return 0


def _cmd_emulate(args: argparse.Namespace) -> int:
    emulator = build_emulator(args)
    if args.http_port == "auto" and emulator.http_port != CLI_HTTP_PORT:
        sys.stderr.write(
            f"note: port {CLI_HTTP_PORT} of {args.host} is taken, so the device information is"
            " served on another port, where Home Assistant and discover do not look (they try"
            f" {' and '.join(map(str, HTTP_PORTS))}): give each emulator a --host of its own"
            " (e.g. 127.0.0.2) for it to be found\n"
        )
    try:
        return asyncio.run(serve(emulator, sys.stdout, serial_link=args.serial_link))
    except KeyboardInterrupt:  # pragma: no cover - only where signal handlers are unavailable
        return 0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Define the options of the ``emulate`` command."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=7053, help="TCP port (0: any free port)")
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument(
        "--personality", choices=[p.value for p in Personality], default=Personality.DL2.value
    )
    parser.add_argument(
        "--via-tag", action="append", metavar="TAG", help="VBus.net via tag (repeatable)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--recording", metavar="FILE", help="replay a .vbus recording")
    source.add_argument("--live", metavar="FILE", help="replay a raw live byte capture")
    source.add_argument(
        "--controller", metavar="NAME_OR_HEX", help="synthesize a controller (default DeltaSol MX)"
    )
    parser.add_argument(
        "--values", metavar="FILE", help="controller value list (controller-values JSON)"
    )
    parser.add_argument(
        "--offer-interval", type=float, default=1.0, help="seconds between bus offers (0: never)"
    )
    parser.add_argument("--bus-timeout", type=float, default=10.0, help="bus fallback, seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--discovery-port", type=int, help="answer UDP discovery on this port")
    parser.add_argument(
        "--serial",
        metavar="HEX",
        help="serial number (MAC address) to report (default: vendor prefix, last byte of the"
        " host and the port, e.g. 001E66011B8D for 127.0.0.1:7053)",
    )
    parser.add_argument(
        "--serial-link",
        metavar="PATH",
        help="also serve channel 1 on a pseudo-terminal, as a serial VBus adapter: PATH becomes"
        " a symlink to it (replaced if there), for vbus monitor --serial PATH",
    )
    parser.add_argument(
        "--http-port",
        type=_http_port_option,
        default="auto",
        metavar="PORT|auto|off",
        help=f"serve the device information on this port (default auto: {CLI_HTTP_PORT}, or any"
        " free port when that is taken)",
    )
    faults = parser.add_argument_group("faults (see Faults)")
    for knob in dataclasses.fields(Faults):  # one option per knob: --drop-after-bytes N, ...
        option = "--" + knob.name.replace("_", "-")
        if knob.type == "bool":
            faults.add_argument(option, action="store_true")
        else:
            number = float if knob.type == "float" else int
            faults.add_argument(option, type=number, default=knob.default, metavar="N")
    parser.set_defaults(handler=_cmd_emulate)
