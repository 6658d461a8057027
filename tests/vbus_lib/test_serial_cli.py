"""``monitor``, ``get-value`` and ``set-value --serial``: on the emulator's pseudo-terminal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from aiovbus.cli import main
from aiovbus.emulator import Emulator, LiveCaptureSource
from aiovbus.protocol import Packet
from aiovbus.session import ConnectionConfig, connect

from .fakes import deny_access, needs_pty
from .test_monitor import run_main

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.usefixtures("socket_enabled"), needs_pty]

# One cycle of a DeltaSol MX system: the controller (sensor 1: 1.9 °C), a module, a heat meter.
CYCLE = (
    Packet(0x0010, 0x7E11, 0x0100, (19).to_bytes(2, "little") + bytes(98)),
    Packet(0x0010, 0x7E31, 0x0100, bytes(48)),
    Packet(0x0010, 0x7E21, 0x0100, bytes(4)),
)
R1_MANUAL = ["--value-id", "Relais_Regler_R1_Handbetrieb"]


async def test_monitor_prints_the_same_lines_over_the_port_as_over_tcp(
    serial_link: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both see the same cycle of one emulated controller.

    A TCP client gets the channel's current packets with ``DATA``, so its first line is the
    cycle's first packet. A serial port has no such moment: the monitor starts with whichever
    packet comes next, so the serial lines are compared from the first cycle start on — the
    only normalisation. The JSON lines carry no receive time.
    """
    capture = b"".join(packet.encode() for packet in CYCLE)
    source = LiveCaptureSource(capture, interval=0.05, controller=None)
    async with Emulator(channels={1: source}, offer_interval=None) as emulator:
        await emulator.open_serial(serial_link)
        tcp_code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(emulator.port), "--json",
            "--count", "3", "--timeout", "30",
        )  # fmt: skip
        tcp = capsys.readouterr().out.splitlines()
        serial_code = await run_main(
            "monitor", "--serial", str(serial_link), "--json", "--count", "6", "--timeout", "30"
        )
        serial = capsys.readouterr().out.splitlines()
    assert (tcp_code, serial_code) == (0, 0)
    assert [json.loads(line)["source"] for line in tcp] == [0x7E11, 0x7E31, 0x7E21]
    assert json.loads(tcp[0])["fields"][0]["value"] == 1.9000000000000001
    start = serial.index(tcp[0])
    assert serial[start : start + 3] == tcp


async def test_set_and_get_value_over_the_port(
    serial_link: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relay 1 of the synthetic DeltaSol MX to manual; the TCP server is never started."""
    monkeypatch.setenv("VBUS_PASSWORD", "set-for-the-logger")  # ignored: no handshake
    emulator = Emulator(offer_interval=0.05)
    try:
        await emulator.open_serial(serial_link)
        port = ["--serial", str(serial_link), "--timeout", "30"]
        assert await run_main("set-value", *port, *R1_MANUAL, "--value", "2") == 0
        assert capsys.readouterr().out == '{"index": 1977, "value": 2, "changeset": 657775292}\n'
        assert await run_main("get-value", *port, "--value-index", "1977") == 0
        assert capsys.readouterr().out == '{"index": 1977, "value": 2, "changeset": 657775292}\n'
        assert emulator.controller(1).store.writes == [(1977, 2)]
    finally:
        await emulator.stop()


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--password", "pw"], "--password"),
        (["--via-tag", "tag"], "--via-tag"),
        (["--channel", "1"], "--channel"),
        (["--tls"], "--tls"),
        (["--raw"], "--raw"),
        (["--port", "7053"], "--port"),
        (["--password", "pw", "--channel", "2"], "--password, --channel"),
    ],
)
@pytest.mark.parametrize("command", ["monitor", "get-value", "set-value"])
def test_handshake_options_are_rejected_with_serial(
    command: str, options: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {"monitor": [], "get-value": ["--value-index", "1"]}.get(
        command, ["--value-index", "1", "--value", "0"]
    )
    assert main([command, "--serial", "/dev/ttyUSB0", *options, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"vbus {command}: {named} cannot be used with --serial: a serial port has no handshake\n"
    )


def test_host_and_serial_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["monitor", "--host", "192.168.1.5", "--serial", "/dev/ttyUSB0"])
    assert caught.value.code == 2
    assert "argument --serial: not allowed with argument --host" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["monitor", "--json"])
    assert "one of the arguments --host --serial is required" in capsys.readouterr().err


# -- a port that does not open: one line, no traceback ------------------------------------------

HINT = (
    "; the user needs access to it: on Linux, membership in the group dialout (sudo usermod -aG"
    " dialout $USER, then log in again); in a container, map the device into it (docker run"
    " --device ...)"
)


@pytest.mark.parametrize("kind", ["missing", "permission", "busy"])
@pytest.mark.parametrize("command", ["monitor", "get-value"])
async def test_a_port_that_does_not_open_is_one_line(
    command: str,
    kind: str,
    serial_link: Path,
    quiet_port: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Also ``get-value``, whose session retries, says so at once instead of after --timeout."""
    port = str(serial_link)
    holder = None
    if kind == "missing":
        await quiet_port.close_serial()
        expected = f"Cannot open the serial port {port}: No such file or directory"
    elif kind == "permission":
        deny_access(monkeypatch, serial_link)
        expected = f"Cannot open the serial port {port}: Permission denied{HINT}"
    else:
        holder = await connect(ConnectionConfig(serial_port=port))  # another program has it
        expected = (
            f"Cannot open the serial port {port}:"
            f" Serial port '{port}' is already locked by another process"
        )
    extra = ["--value-index", "1"] if command == "get-value" else []
    try:
        code = await run_main(command, "--serial", port, *extra, "--timeout", "60")
    finally:
        if holder is not None:
            await holder.close()
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"vbus {command}: {expected}\n"


@pytest.mark.parametrize(
    ("command", "message"),
    [("monitor", "no VBus packet within 0.3 s"), ("get-value", "no VBus data within 0.3 s")],
)
async def test_timeout_bounds_the_waits_on_a_quiet_port(
    command: str,
    message: str,
    serial_link: Path,
    quiet_port: Emulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = ["--value-index", "1"] if command == "get-value" else []
    code = await run_main(command, "--serial", str(serial_link), *extra, "--timeout", "0.3")
    assert code == 1
    assert capsys.readouterr().err == f"vbus {command}: {message}\n"
