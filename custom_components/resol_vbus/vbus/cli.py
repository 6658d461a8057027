"""Command line interface: the ``vbus`` command (``python -m aiovbus``).

Start-up is kept short: only the chosen command's modules are imported, and its options are
defined only when it runs (``vbus --help`` lists the commands without loading any of them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import VBusError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import TextIO

    from .protocol import Frame, Packet
    from .session import ConnectionConfig, VBusSession
    from .specification import Specification

PROG = "vbus"


def iter_packets(data: bytes, *, raw: bool = False) -> Iterator[Packet]:
    """Yield the protocol 1.0 packets of a recording or of a raw live byte capture."""
    from .protocol import Packet  # noqa: PLC0415 - imported when the command runs
    from .receiver import StreamReceiver  # noqa: PLC0415
    from .recording import RecordedFrame, is_recording, read_recording  # noqa: PLC0415

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
    from .specification import Specification  # noqa: PLC0415 - imported when the command runs

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
    from .output import PacketJsonFormatter  # noqa: PLC0415 - imported when the command runs

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


class _Phase:
    """Which wait of a command is running: a ``--timeout`` names it in the error."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        self.waiting_for = "connection"

    def expired(self) -> int:
        """Say which wait ran out; the exit code."""
        print(
            f"{PROG} {self.command}: no {self.waiting_for} within {self.timeout:g} s",
            file=sys.stderr,
        )
        return 1


async def _monitor(args: argparse.Namespace, spec: Specification) -> int:
    """Print packets until ``--count`` or ``--seconds``; ``--timeout`` bounds every wait."""
    from .output import PacketJsonFormatter  # noqa: PLC0415 - imported when the command runs
    from .protocol import Packet  # noqa: PLC0415
    from .session import connect  # noqa: PLC0415

    phase = _Phase("monitor", args.timeout)
    try:
        async with asyncio.timeout(args.timeout):
            connection = await connect(_config(args))
    except TimeoutError:
        return phase.expired()
    phase.waiting_for = "VBus packet"
    formatter = PacketJsonFormatter(spec, args.lang, text=args.text)
    printed = 0
    loop = asyncio.get_running_loop()
    end = None if args.seconds is None else loop.time() + args.seconds
    try:
        while args.count is None or printed < args.count:
            # Silence ends the command after --timeout; --seconds ends it without an error.
            silence_end = loop.time() + args.timeout
            try:
                async with asyncio.timeout_at(
                    silence_end if end is None else min(end, silence_end)
                ):
                    while True:
                        packets = [
                            f for f in await connection.read_frames() if isinstance(f, Packet)
                        ]
                        if packets:
                            break
            except TimeoutError:
                if end is not None and loop.time() >= end:
                    return 0
                return phase.expired()
            for frame in packets[: None if args.count is None else args.count - printed]:
                if args.json:
                    sys.stdout.write(formatter.line(frame) + "\n")
                else:
                    sys.stdout.write("\n".join(_text_lines(spec, frame, args.lang)) + "\n")
                printed += 1
            sys.stdout.flush()
    finally:
        await connection.close()
    return 0


PASSWORD_ENV = "VBUS_PASSWORD"  # noqa: S105 - the name of the variable, not a password
VIA_TAG_ENV = "VBUS_VIA_TAG"


def _connection_options(parser: argparse.ArgumentParser) -> None:
    from .session import DEFAULT_PASSWORD, DEFAULT_PORT  # noqa: PLC0415 - when defined

    device = parser.add_mutually_exclusive_group(required=True)
    device.add_argument("--host", help="DL2/DL3/KM2/VBus-LAN address or vbus.net")
    device.add_argument(
        "--serial",
        metavar="PORT",
        help="serial port of a VBus/USB adapter or a controller's USB port, e.g."
        " /dev/serial/by-id/usb-RESOL_...; 9600 baud, no handshake",
    )
    parser.add_argument("--port", type=int, help=f"TCP port (default {DEFAULT_PORT})")
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


# Options of the TCP handshake; a serial port has none (the environment variables are ignored).
_TCP_ONLY = ("port", "password", "via_tag", "channel", "tls", "raw")


def _serial_conflict(args: argparse.Namespace) -> str | None:
    """Why the options do not go together, or ``None``."""
    given = [name for name in _TCP_ONLY if getattr(args, name) not in (None, False)]
    if args.serial is None or not given:
        return None
    options = ", ".join("--" + name.replace("_", "-") for name in given)
    return f"{options} cannot be used with --serial: a serial port has no handshake"


def _hint(args: argparse.Namespace, err: BaseException) -> str:
    """Advice for an error the user can fix: a serial port they may not open."""
    serial = args.command in ("monitor", "get-value", "set-value") and args.serial
    if serial and isinstance(err.__cause__, PermissionError):
        return (
            "; the user needs access to it: on Linux, membership in the group dialout"
            " (sudo usermod -aG dialout $USER, then log in again); in a container, map the"
            " device into it (docker run --device ...)"
        )
    return ""


def _config(args: argparse.Namespace) -> ConnectionConfig:
    from .session import DEFAULT_PASSWORD, DEFAULT_PORT, ConnectionConfig  # noqa: PLC0415

    if args.serial is not None:
        return ConnectionConfig(serial_port=args.serial)
    return ConnectionConfig(
        host=args.host,
        port=DEFAULT_PORT if args.port is None else args.port,
        password=args.password or os.environ.get(PASSWORD_ENV) or DEFAULT_PASSWORD,
        via_tag=args.via_tag or os.environ.get(VIA_TAG_ENV) or None,
        channel=args.channel,
        tls=args.tls,
        raw=args.raw,
    )


async def _parameter(args: argparse.Namespace) -> int:
    """Read or write one value; ``--timeout`` bounds the whole command, every wait in it."""
    import json  # noqa: PLC0415 - imported when the command runs

    from .parameters import ParameterEngine, Timing  # noqa: PLC0415
    from .session import VBusSession  # noqa: PLC0415
    from .valueid import value_id_hash  # noqa: PLC0415

    session = VBusSession(_config(args))
    session.start()
    # The engine's own limits lie beyond --timeout, so that --timeout always ends the command
    # and names the wait that ran out.
    timing = Timing(offer=args.timeout + 1, deadline=args.timeout + 1)
    engine = ParameterEngine(session, address=args.address, timing=timing)
    phase = _Phase(args.command, args.timeout)
    connecting = phase.waiting_for = "connection" if args.serial is None else "VBus data"
    try:
        async with asyncio.timeout(args.timeout):
            # A serial port counts as connected once data arrives (it has no handshake).
            await _connected(session, retry=args.serial is None)
            phase.waiting_for = "bus offer"
            controller = args.controller or await _first_offer(session)
            phase.waiting_for = f"bus offer and answer from the controller 0x{controller:04X}"
            target = {"index": args.value_index, "id_hash": args.value_id_hash}
            if args.value_id is not None:
                target["id_hash"] = value_id_hash(args.value_id)
            if args.command == "set-value":
                result = await engine.set(controller, args.value, **target)
            else:
                result = await engine.get(controller, **target)
    except TimeoutError:
        if phase.waiting_for == connecting and session.last_error is not None:
            error = session.last_error
            print(f"{PROG} {args.command}: {error}{_hint(args, error)}", file=sys.stderr)
            return 1
        return phase.expired()
    finally:
        await engine.close()
        await session.stop()
    print(json.dumps({"index": result.index, "value": result.value, "changeset": result.changeset}))
    return 0


async def _connected(session: VBusSession, *, retry: bool) -> None:
    """Wait until data flows; without ``retry``, the first failed attempt raises its reason.

    A serial port that does not open (no such device, no permission, another program holds
    it) seldom opens a moment later: a command says so at once instead of after ``--timeout``.
    """
    from .aio import cancel_and_wait  # noqa: PLC0415 - imported when the command runs
    from .session import SessionState  # noqa: PLC0415

    if retry:
        await session.wait_connected()
        return
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def watch(state: SessionState, reason: BaseException | None) -> None:
        if state == SessionState.DISCONNECTED and reason is not None and not failed.done():
            failed.set_exception(reason)

    remove = session.add_state_listener(watch)
    connected = asyncio.create_task(session.wait_connected())
    try:
        await asyncio.wait((connected, failed), return_when=asyncio.FIRST_COMPLETED)
    finally:
        remove()
        if not connected.done():
            await cancel_and_wait(connected)
    if connected.cancelled():
        failed.result()  # raises the reason
    connected.result()


async def _first_offer(session: VBusSession) -> int:
    """The address of the first controller that offers the bus."""
    from .protocol import CMD_OFFER, Datagram  # noqa: PLC0415 - imported when the command runs

    offered: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def watch(frame: Frame) -> None:
        if isinstance(frame, Datagram) and frame.command == CMD_OFFER and not offered.done():
            offered.set_result(frame.source)

    unsubscribe = session.subscribe(watch)
    try:
        return await offered
    finally:
        unsubscribe()


def _rejected(args: argparse.Namespace) -> int | None:
    """Exit code 2 with one line when the options contradict each other."""
    problem = _serial_conflict(args)
    if problem is None:
        return None
    print(f"{PROG} {args.command}: {problem}", file=sys.stderr)
    return 2


def _cmd_parameter(args: argparse.Namespace) -> int:
    if (code := _rejected(args)) is not None:
        return code
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_parameter(args))
    return 130


def _add_parameter_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str
) -> None:
    from .parameters import DEFAULT_ADDRESS  # noqa: PLC0415 - imported when defined

    parser = commands.add_parser(name, help=COMMANDS[name])
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
    _timeout_option(parser, "give up when the whole command takes longer than S seconds")
    parser.set_defaults(handler=_cmd_parameter)


def _timeout_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help=f"{text} (default 60 s)"
    )


def _cmd_monitor(args: argparse.Namespace) -> int:
    if (code := _rejected(args)) is not None:
        return code
    spec = load_spec(args.spec)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_monitor(args, spec))
    return 130


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    from .specification import LANGUAGES  # noqa: PLC0415 - imported when defined

    parser.add_argument("--json", action="store_true", help="one JSON object per packet")
    parser.add_argument("--text", action="store_true", help="with --json: add human text")
    parser.add_argument("--lang", choices=LANGUAGES, default="en", help="language of names")
    parser.add_argument(
        "--spec", metavar="VSF", help="use this VSF file instead of the bundled one"
    )


def _add_decode_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    decode = commands.add_parser("decode", help=COMMANDS["decode"])
    decode.add_argument("file", metavar="FILE")
    decode.add_argument("--raw", action="store_true", help="FILE is a raw live byte capture")
    _add_output_options(decode)
    decode.set_defaults(handler=_cmd_decode)


def _add_monitor_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = commands.add_parser("monitor", help=COMMANDS["monitor"])
    _connection_options(monitor)
    monitor.add_argument("--count", type=int, help="exit after N packets")
    monitor.add_argument("--seconds", type=float, help="exit after S seconds")
    _timeout_option(monitor, "fail when connecting, or the wait for the next packet, takes longer")
    _add_output_options(monitor)
    monitor.set_defaults(handler=_cmd_monitor)


type _Define = Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]  # noqa: SLF001


def _from_module(name: str, module: str) -> _Define:
    """Define command ``name`` with ``configure_parser`` of ``module`` (imported only then)."""

    def add(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = commands.add_parser(name, help=COMMANDS[name])
        importlib.import_module(f".{module}", __package__).configure_parser(parser)

    return add


#: Every command and what ``vbus --help`` says about it.
COMMANDS = {
    "decode": "decode a .vbus recording or a raw live byte capture",
    "monitor": "connect to a device and print live packets",
    "get-value": "read a controller value",
    "set-value": "write a controller value",
    "emulate": "emulate a RESOL LAN device (DL2, DL3, KM2, VBus/LAN, VBus.net, raw)",
    "discover": "find RESOL devices on the LAN (UDP + HTTP)",
}
_DEFINE: dict[str, _Define] = {
    "decode": _add_decode_command,
    "monitor": _add_monitor_command,
    "get-value": lambda commands: _add_parameter_command(commands, "get-value"),
    "set-value": lambda commands: _add_parameter_command(commands, "set-value"),
    "emulate": _from_module("emulate", "emulator"),
    "discover": _from_module("discover", "discovery"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; fully for ``command`` only (``None``: for every command).

    Any other ``command`` (``""``) lists the commands without defining their options.
    """
    parser = argparse.ArgumentParser(
        prog=PROG, description="RESOL VBus tools: decode recordings and live captures."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        if command is None or name == command:
            _DEFINE[name](commands)
        else:
            commands.add_parser(name, help=text)  # listed; its options are defined if it runs
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in arguments if not word.startswith("-")), "")
    args = build_parser(command if command in COMMANDS else "").parse_args(arguments)
    try:
        code: int = args.handler(args)
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (VBusError, OSError) as err:
        print(f"{PROG} {args.command}: {err}{_hint(args, err)}", file=sys.stderr)
        return 1
    return code
