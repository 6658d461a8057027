"""The ``emulate`` command: options, serials, information ports, serving until signalled."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import sys
from pathlib import Path

import pytest

from aiovbus.cli import build_parser
from aiovbus.discovery import fetch_device_information
from aiovbus.emulator import (
    Faults,
    Personality,
    build_emulator,
    cli_serial,
    serve,
)
from aiovbus.protocol import Packet
from aiovbus.session import ConnectionConfig, connect
from tests.vbus_lib.conftest import RECORDINGS, reference_file
from tests.vbus_lib.fakes import needs_pty

from .client import Client
from .common import MX, P1, TIMEOUT, VALUE_LIST

pytestmark = pytest.mark.usefixtures("socket_enabled")


ROOT = Path(__file__).resolve().parents[3]


def emulate_args(*argv: str):
    return build_parser().parse_args(["emulate", *argv])


def test_build_emulator_from_options(tmp_path: Path) -> None:
    values = tmp_path / "values.json"
    values.write_text(json.dumps(VALUE_LIST))
    emulator = build_emulator(
        emulate_args(
            "--personality", "vbusnet", "--via-tag", "a", "--via-tag", "b", "--port", "0",
            "--values", str(values), "--offer-interval", "0", "--speed", "3", "--bus-timeout", "2",
            "--drop-after-bytes", "5", "--cut-mid-frame", "--silent", "--corrupt-every", "9",
            "--refuse-password", "--never-offer-bus", "--answer-delay", "0.5",
            "--drop-answers", "2", "--duplicate-answers", "--discovery-port", "0",
            "--http-port", "0", "--password", "pw", "--reject-channel", "--reject-data",
            "--hard-close",
        )
    )  # fmt: skip
    assert emulator.personality == Personality.VBUSNET
    assert emulator.via_tags == ("a", "b")
    assert emulator.faults == Faults(
        drop_after_bytes=5,
        cut_mid_frame=True,
        silent=True,
        corrupt_every=9,
        refuse_password=True,
        answer_delay=0.5,
        drop_answers=2,
        duplicate_answers=True,
        never_offer_bus=True,
        reject_channel=True,
        reject_data=True,
        hard_close=True,
    )
    assert build_emulator(emulate_args()).faults == Faults()
    controller = emulator.controller()
    assert controller.address == 0x4212  # from the value list's deviceAddress
    assert controller.store["TSp1Max"].value == 600
    assert (controller.offer_interval, controller.bus_timeout, emulator.speed) == (None, 2, 3)
    assert (emulator.discovery_port, emulator.http_port, emulator.password) == (0, 0, "pw")
    assert build_emulator(emulate_args("--controller", "DeltaSol C")).controller().address == 0x4212
    live = tmp_path / "live.bin"
    live.write_bytes(P1.encode())
    assert build_emulator(emulate_args("--live", str(live))).controller().address == MX
    default = build_emulator(emulate_args("--personality", "dl3"))
    assert default.channel_names == {1: "DeltaSol MX"}
    assert default.describe() == "emulating dl3 on 127.0.0.1:7053 (password vbus)"


def test_build_emulator_from_a_recording() -> None:
    path = reference_file("recordings", RECORDINGS[0])
    dl3 = build_emulator(emulate_args("--personality", "dl3", "--recording", str(path)))
    assert dl3.channel_names == {1: "DeltaSol MX"}
    assert sorted(dl3.controllers) == [1]
    dl2 = build_emulator(emulate_args("--recording", str(path)))
    assert dl2.controller().address == MX


def test_emulate_serial_names_the_listening_address() -> None:
    assert cli_serial(Personality.DL3, "127.0.0.1", 7053) == "001E66011B8D"
    assert cli_serial(Personality.KM2, "127.0.0.2", 7054) == "A84041021B8E"  # KM2s: their OUI
    assert cli_serial(Personality.DL2, "::1", 80) == "001E66010050"
    assert len(cli_serial(Personality.LAN, "localhost", 7053)) == 12
    assert build_emulator(emulate_args("--personality", "dl3")).information.serial == (
        "001E66011B8D"
    )
    assert build_emulator(emulate_args("--host", "127.0.0.2")).information.serial == (
        "001E66021B8D"
    )
    explicit = build_emulator(emulate_args("--serial", "001E66E7A003"))
    assert explicit.information.serial == "001E66E7A003"
    assert explicit.greeting == "This is DL2-001E66E7A003, at your service!"
    assert build_emulator(emulate_args("--http-port", "off")).http_port is None


async def test_default_emulators_differ_in_serial_and_information_port() -> None:
    # Home Assistant tells devices apart by the serial in their device information, so two
    # emulators on one machine (scripts/develop and one more, say) must not share either. Only
    # --port 0 differs from the defaults: the default TCP port 7053 may be taken by a demo.
    first = build_emulator(emulate_args("--port", "0"))
    async with first:
        second = build_emulator(emulate_args("--port", "0"))
        async with second:
            emulators = (first, second)
            serials = [emulator.information.serial for emulator in emulators]
            assert serials == [
                cli_serial(Personality.DL2, "127.0.0.1", emulator.port) for emulator in emulators
            ]
            assert serials[0] != serials[1]
            assert first.http_port is not None
            assert second.http_port is not None
            assert first.http_port != second.http_port
            for emulator in emulators:
                information = await fetch_device_information(
                    "127.0.0.1", (emulator.http_port,), TIMEOUT
                )
                assert information is not None
                assert information.serial == emulator.information.serial


class _Flushed(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushed = asyncio.Event()

    def flush(self) -> None:
        self.flushed.set()


async def test_serve_prints_where_it_listens_and_stops_cleanly() -> None:
    emulator = build_emulator(
        emulate_args(
            "--port", "0", "--personality", "dl3", "--discovery-port", "0", "--http-port", "0"
        )
    )
    out = _Flushed()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(emulator, out, stop))
    async with asyncio.timeout(TIMEOUT):
        await out.flushed.wait()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"emulating dl3 on 127.0.0.1:{emulator.port} (password vbus)"
    assert lines[1:] == [
        "  channel 1: DeltaSol MX",
        f"  discovery: UDP 127.0.0.1:{emulator.discovery_port}",
        f"  device information: HTTP 127.0.0.1:{emulator.http_port}",
    ]
    client = await Client.open(emulator)
    assert (await client.line()).startswith(b"+HELLO ")
    stop.set()
    assert await task == 0
    assert await client.eof() == b""
    await client.close()


@needs_pty
async def test_serve_with_a_serial_link_serves_channel_1_on_a_terminal(tmp_path: Path) -> None:
    link = tmp_path / "ttyVBus"
    args = emulate_args("--port", "0", "--http-port", "off", "--serial-link", str(link))
    assert args.serial_link == str(link)
    emulator = build_emulator(args)
    out = _Flushed()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(emulator, out, stop, serial_link=args.serial_link))
    async with asyncio.timeout(TIMEOUT):
        await out.flushed.wait()
    assert out.getvalue().splitlines() == [
        f"emulating dl2 on 127.0.0.1:{emulator.port} (password vbus)",
        "  channel 1: DeltaSol MX",
        f"  serial port: {link} (channel 1, no handshake)",
    ]
    connection = await connect(ConnectionConfig(serial_port=str(link)))
    try:
        async with asyncio.timeout(TIMEOUT):
            while not any(isinstance(f, Packet) for f in await connection.read_frames()):
                pass
    finally:
        await connection.close()
    stop.set()
    assert await task == 0
    assert not link.is_symlink()  # stopping unplugs the port


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_emulate_command_runs_until_signalled(signum: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiovbus",
        "emulate",
        "--port",
        "0",
        "--speed",
        "20",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode()
        match = re.fullmatch(r"emulating dl2 on 127\.0\.0\.1:(\d+) \(password vbus\)\n", first)
        assert match, first
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match[1]))
        client = Client(reader, writer)
        await client.start()
        assert isinstance(await client.frame(), Packet)
        process.send_signal(signum)
        async with asyncio.timeout(TIMEOUT):
            assert await process.wait() == 0
        await client.eof()
        await client.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
