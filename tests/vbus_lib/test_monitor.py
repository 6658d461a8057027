"""The ``monitor`` command against a scripted device on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest

from aiovbus.cli import main
from aiovbus.emulator import Emulator, Personality, RecordingSource
from aiovbus.protocol import Datagram, Packet

from .conftest import RECORDINGS, reference_file
from .fakes import ScriptedDevice

pytestmark = pytest.mark.usefixtures("socket_enabled")

PAYLOAD = (19).to_bytes(2, "little") + bytes(98)
PACKETS = [
    Packet(0x0010, 0x7E11, 0x0100, PAYLOAD),
    Packet(0x0010, 0x7E31, 0x0100, bytes(48)),
]
OK = b"+OK\r\n"


async def run_main(*args: str) -> int:
    """Run the command line in a thread (it starts its own event loop)."""
    return await asyncio.to_thread(main, list(args))


async def test_monitor_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    data = Datagram(0x0000, 0x7E11, 0x0500).encode() + b"".join(p.encode() for p in PACKETS)
    replies = {"PASS": OK, "CHANNEL": OK, "DATA": OK}
    async with ScriptedDevice(replies=replies, data=data) as device:
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(device.port), "--channel", "2",
            "--password", "pw", "--json", "--count", "2",
        )  # fmt: skip
        await device.wait_finished()
    assert code == 0
    assert device.lines == ["PASS pw", "CHANNEL 2", "DATA"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["source"] for line in lines] == [0x7E11, 0x7E31]
    assert lines[0]["channel"] == 2
    assert lines[0]["device"] == "DeltaSol MX [Controller]"
    assert lines[0]["fields"][0] == {
        "id": "000_2_0",
        "name": "Temperature sensor 1",
        "value": 1.9000000000000001,
        "unit": "°C",
    }


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ((), ["CONNECT env-tag", "PASS env-pw", "DATA"]),
        (
            ("--password", "arg-pw", "--via-tag", "arg-tag"),
            ["CONNECT arg-tag", "PASS arg-pw", "DATA"],
        ),
    ],
)
async def test_monitor_secrets_from_environment(
    monkeypatch: pytest.MonkeyPatch, arguments: tuple[str, ...], expected: list[str]
) -> None:
    """$VBUS_PASSWORD and $VBUS_VIA_TAG keep secrets out of the process list; arguments win."""
    monkeypatch.setenv("VBUS_PASSWORD", "env-pw")
    monkeypatch.setenv("VBUS_VIA_TAG", "env-tag")
    replies = {"CONNECT": OK, "PASS": OK, "DATA": OK}
    async with ScriptedDevice(replies=replies, data=PACKETS[0].encode()) as device:
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(device.port), "--count", "1",
            *arguments,
        )  # fmt: skip
        await device.wait_finished()
    assert code == 0
    assert device.lines == expected


async def test_monitor_text_until_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    async with ScriptedDevice(data=PACKETS[0].encode()) as device:
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(device.port), "--seconds", "0.2"
        )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "DeltaSol MX [Controller] (00_0010_7E11_10_0100)"
    assert out[1] == "    Temperature sensor 1: 1.9 °C"


async def test_monitor_handshake_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    async with ScriptedDevice(replies={"PASS": b"-ERROR: Password rejected\r\n"}) as device:
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(device.port), "--password", "bad"
        )  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "vbus monitor: The device rejected the password (PASS): -ERROR: Password rejected\n"
    )


async def test_monitor_against_emulator_equals_decode(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue acceptance: a DL3 replaying 20140215 streams exactly what ``decode`` reads."""
    path = reference_file("recordings", RECORDINGS[1])
    assert main(["decode", "--json", str(path)]) == 0
    expected = [
        line for line in capsys.readouterr().out.splitlines() if json.loads(line)["channel"] == 1
    ]
    assert len(expected) == 4609 - 288  # all but the DL3's own packets on channel 0
    source = RecordingSource(path.read_bytes(), channel=1, loop=False)
    async with Emulator(
        personality=Personality.DL3, channels={1: source}, speed=1e9, offer_interval=None
    ) as emulator:
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(emulator.port), "--channel", "1",
            "--json", "--count", str(len(expected)),
        )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.splitlines() == expected


# -- every wait ends: --timeout ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (ScriptedDevice(greeting=b""), "no connection within 0.3 s"),  # never greets
        (ScriptedDevice(replies={"PASS": OK, "DATA": OK}), "no VBus packet within 0.3 s"),
        (  # sends only a datagram (a bus offer), never a packet
            ScriptedDevice(data=Datagram(0x0000, 0x7E11, 0x0500).encode()),
            "no VBus packet within 0.3 s",
        ),
    ],
    ids=["greeting", "data", "no-packet"],
)
async def test_monitor_timeout_ends_every_wait(
    device: ScriptedDevice, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with device:
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(device.port), "--timeout", "0.3"
        )
    assert code == 1
    assert capsys.readouterr().err == f"vbus monitor: {message}\n"


async def test_monitor_seconds_end_without_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    async with ScriptedDevice() as device:  # connected, but nothing ever comes
        code = await run_main(
            "monitor", "--host", "127.0.0.1", "--port", str(device.port),
            "--seconds", "0.2", "--timeout", "30",
        )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("controller", "message"),
    [
        ((), "no bus offer within 0.5 s"),
        (
            ("--controller", "0x7e11"),
            "no bus offer and answer from the controller 0x7E11 within 0.5 s",
        ),
    ],
    ids=["first-offer", "given-controller"],
)
@pytest.mark.parametrize("command", ["get-value", "set-value"])
async def test_parameter_timeout_covers_the_wait_for_the_bus(
    command: str, controller: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A controller that never offers the bus: the command still ends after --timeout."""
    async with Emulator(personality=Personality.DL2, offer_interval=None) as emulator:
        value = ("--value", "1") if command == "set-value" else ()
        code = await run_main(
            command, "--host", "127.0.0.1", "--port", str(emulator.port),
            "--value-index", "1", *value, *controller, "--timeout", "0.5",
        )  # fmt: skip
        assert emulator.controller(1).store.writes == []
    assert code == 1
    assert capsys.readouterr().err == f"vbus {command}: {message}\n"


@pytest.mark.parametrize("command", ["get-value", "set-value"])
async def test_parameter_timeout_covers_connecting(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device that accepts the connection and never greets: the command ends after --timeout."""
    async with ScriptedDevice(greeting=b"") as device:
        value = ("--value", "1") if command == "set-value" else ()
        code = await run_main(
            command, "--host", "127.0.0.1", "--port", str(device.port),
            "--value-index", "1", *value, "--timeout", "0.3",
        )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err == f"vbus {command}: no connection within 0.3 s\n"
