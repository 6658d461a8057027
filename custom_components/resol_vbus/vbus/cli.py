"""Command line interface: ``python -m vbus`` / ``python -m custom_components.resol_vbus.vbus``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import discovery, emulator
from .errors import VBusError
from .output import PacketJsonFormatter
from .parameters import DEFAULT_ADDRESS, ParameterEngine
from .protocol import CMD_OFFER, Datagram, Frame, Packet
from .receiver import StreamReceiver
from .recording import RecordedFrame, is_recording, read_recording
from .session import DEFAULT_PASSWORD, DEFAULT_PORT, ConnectionConfig, VBusSession, connect
from .specification import LANGUAGES, Specification
from .valueid import value_id_hash

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import TextIO

PROG = "vbus"


def iter_packets(data: bytes, *, raw: bool = False) -> Iterator[Packet]:
    """Yield the protocol 1.0 packets of a recording or of a raw live byte capture."""
    if not raw and is_recording(data):
        for item in read_recording(data):
            if isinstance(item, RecordedFrame) and isinstance(item.frame, Packet):
                yield item.frame
    else:
        for frame in StreamReceiver().feed(data):
            if isinstance(frame, Packet):
                yield frame


def load_spec(path: str | None) -> Specification:
    """The bundled specification, or the VSF file at ``path``."""
    return Specification.from_vsf(path) if path else Specification.bundled()


def _text_lines(spec: Specification, packet: Packet, language: str) -> Iterator[str]:
    prefix = f"VBus #{packet.channel}: " if packet.channel else ""
    yield f"{prefix}{spec.source_name(packet, language)} ({packet.packet_id})"
    decoder = spec.decoder_for(packet)
    if decoder is not None:
        for field, value in zip(decoder.fields, decoder.decode(packet.frame_data), strict=True):
            if value is not None:
                yield f"    {field.name(language)}: {field.format(value)}"


def write_packets(
    packets: Iterator[Packet], spec: Specification, args: argparse.Namespace, out: TextIO
) -> int:
    """Print ``packets`` in the format chosen by ``args``; return how many were printed."""
    count = 0
    if args.json:
        formatter = PacketJsonFormatter(spec, args.lang, text=args.text)
        lines: list[str] = []
        for packet in packets:
            lines.append(formatter.line(packet))
            count += 1
            if len(lines) >= 256:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")
    else:
        for packet in packets:
            out.write("\n".join(_text_lines(spec, packet, args.lang)) + "\n")
            count += 1
    out.flush()
    return count


def _cmd_decode(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    spec = load_spec(args.spec)
    write_packets(iter_packets(data, raw=args.raw), spec, args, sys.stdout)
    return 0


async def _monitor(args: argparse.Namespace, spec: Specification) -> int:
    connection = await connect(_config(args))
    formatter = PacketJsonFormatter(spec, args.lang, text=args.text)
    printed = 0
    try:
        async with asyncio.timeout(args.seconds):
            while args.count is None or printed < args.count:
                for frame in await connection.read_frames():
                    if not isinstance(frame, Packet):
                        continue
                    if args.json:
                        sys.stdout.write(formatter.line(frame) + "\n")
                    else:
                        sys.stdout.write("\n".join(_text_lines(spec, frame, args.lang)) + "\n")
                    sys.stdout.flush()
                    printed += 1
                    if printed == args.count:
                        break
    except TimeoutError:
        pass
    finally:
        await connection.close()
    return 0


PASSWORD_ENV = "VBUS_PASSWORD"  # noqa: S105 - the name of the variable, not a password
VIA_TAG_ENV = "VBUS_VIA_TAG"


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="DL2/DL3/KM2/VBus-LAN address or vbus.net")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--password",
        help=f"device password (default: ${PASSWORD_ENV}, else {DEFAULT_PASSWORD!r}); other users "
        f"of this machine can read an argument in the process list, ${PASSWORD_ENV} they cannot",
    )
    parser.add_argument(
        "--via-tag", help=f"VBus.net via tag (only for vbus.net; default: ${VIA_TAG_ENV})"
    )
    parser.add_argument("--channel", type=int, help="DL3 VBus channel (1-6)")
    parser.add_argument("--tls", action="store_true", help="use TLS (VBus.net port 57053)")
    parser.add_argument("--raw", action="store_true", help="no handshake (serial-to-LAN gateway)")


def _config(args: argparse.Namespace) -> ConnectionConfig:
    return ConnectionConfig(
        host=args.host,
        port=args.port,
        password=args.password or os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD,
        via_tag=args.via_tag or os.environ.get(VIA_TAG_ENV) or None,
        channel=args.channel,
        tls=args.tls,
        raw=args.raw,
    )


async def _parameter(args: argparse.Namespace) -> int:
    session = VBusSession(_config(args))
    session.start()
    engine = ParameterEngine(session, address=args.address)
    try:
        async with asyncio.timeout(args.timeout):
            await session.wait_connected()
        controller = args.controller or await _first_offer(session)
        target = {"index": args.value_index, "id_hash": args.value_id_hash}
        if args.value_id is not None:
            target["id_hash"] = value_id_hash(args.value_id)
        if args.command == "set-value":
            result = await engine.set(controller, args.value, **target)
        else:
            result = await engine.get(controller, **target)
    except TimeoutError:
        reason = session.last_error or f"no connection within {args.timeout:g} s"
        print(f"{PROG} {args.command}: {reason}", file=sys.stderr)
        return 1
    finally:
        await engine.close()
        await session.stop()
    print(json.dumps({"index": result.index, "value": result.value, "changeset": result.changeset}))
    return 0


async def _first_offer(session: VBusSession) -> int:
    """The address of the first controller that offers the bus."""
    offered: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def watch(frame: Frame) -> None:
        if isinstance(frame, Datagram) and frame.command == CMD_OFFER and not offered.done():
            offered.set_result(frame.source)

    unsubscribe = session.subscribe(watch)
    try:
        return await offered
    finally:
        unsubscribe()


def _cmd_parameter(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_parameter(args))
    return 130


def _add_parameter_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> None:
    parser = commands.add_parser(name, help=text)
    _connection_options(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--value-id", help="value name, e.g. Relais_Regler_R1_Handbetrieb")
    target.add_argument("--value-id-hash", type=int, help="value-ID hash")
    target.add_argument("--value-index", type=int, help="value index (changes with firmware)")
    if name == "set-value":
        parser.add_argument("--value", type=int, required=True, help="raw value to write")
    parser.add_argument(
        "--controller",
        type=lambda text: int(text, 0),
        help="controller address (default: the sender of the first bus offer)",
    )
    parser.add_argument(
        "--address",
        type=lambda text: int(text, 0),
        default=DEFAULT_ADDRESS,
        help="our own VBus address (default 0x0020)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after S seconds")
    parser.set_defaults(handler=_cmd_parameter)


def _cmd_monitor(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_monitor(args, spec))
    return 130


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per packet")
    parser.add_argument("--text", action="store_true", help="with --json: add human text")
    parser.add_argument("--lang", choices=LANGUAGES, default="en", help="language of names")
    parser.add_argument(
        "--spec", metavar="VSF", help="use this VSF file instead of the bundled one"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="RESOL VBus tools: decode recordings and live captures."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    decode = commands.add_parser(
        "decode", help="decode a .vbus recording or a raw live byte capture"
    )
    decode.add_argument("file", metavar="FILE")
    decode.add_argument("--raw", action="store_true", help="FILE is a raw live byte capture")
    _add_output_options(decode)
    decode.set_defaults(handler=_cmd_decode)

    monitor = commands.add_parser("monitor", help="connect to a device and print live packets")
    _connection_options(monitor)
    monitor.add_argument("--count", type=int, help="exit after N packets")
    monitor.add_argument("--seconds", type=float, help="exit after S seconds")
    _add_output_options(monitor)
    monitor.set_defaults(handler=_cmd_monitor)
    _add_parameter_command(commands, "get-value", "read a controller value")
    _add_parameter_command(commands, "set-value", "write a controller value")
    emulator.add_parser(commands)
    discovery.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (VBusError, OSError) as err:
        print(f"{PROG} {args.command}: {err}", file=sys.stderr)
        return 1
    return code
