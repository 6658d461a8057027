"""Command line: ``decode`` output contract, both ways of running the package, package rules."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import aiovbus
from aiovbus.cli import iter_packets, main
from aiovbus.protocol import Packet
from aiovbus.recording import (
    HeaderSetStart,
    RecordedFrame,
    write_recording,
)

from .conftest import RECORDINGS, reference_file
from .test_blocktype import PAYLOAD as BLOCK_PAYLOAD

ROOT = Path(__file__).resolve().parents[2]
# The installed library (the wheel in the library lane, the checkout's folder elsewhere).
PACKAGE = Path(aiovbus.__file__).parent


def decode_lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    assert main(["decode", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_decode_json_reproduces_golden(capsys: pytest.CaptureFixture[str]) -> None:
    path = reference_file("recordings", RECORDINGS[0])
    golden = json.loads(reference_file("golden", "20140214-first-headerset.json").read_text())
    lines = decode_lines(capsys, "--json", "--text", str(path))
    assert len(lines) == 4607
    first_set = lines[:16]
    assert [(p["channel"], p["destination"], p["source"], p["command"]) for p in first_set] == [
        (p["channel"], p["destination"], p["source"], p["command"]) for p in golden["packets"]
    ]
    by_packet: dict[str, dict[str, dict]] = {}
    for line in first_set:
        packet_id = (
            f"{line['channel']:02X}_{line['destination']:04X}_{line['source']:04X}_10_"
            f"{line['command']:04X}"
        )
        by_packet[packet_id] = {f["id"]: f for f in line["fields"]}
    compared = 0
    for expected in golden["fields"]:
        fields = by_packet[expected["packet_id"]]
        if expected["value"] is None:
            assert expected["field_id"] not in fields
            continue
        got = fields[expected["field_id"]]
        assert got["value"] == expected["value"]
        assert got["name"] == expected["name"]
        assert got["text"] == expected["text"]
        compared += 1
    assert compared == sum(1 for f in golden["fields"] if f["value"] is not None)
    mx = first_set[1]
    assert mx["device"] == "DeltaSol MX [Controller]"
    assert mx["fields"][0] == {
        "id": "000_2_0",
        "name": "Temperature sensor 1",
        "value": 1.9000000000000001,
        "unit": "°C",
        "text": "1.9 °C",
    }


def test_decode_block_packet_sections(capsys: pytest.CaptureFixture[str]) -> None:
    lines = decode_lines(capsys, "--json", str(reference_file("recordings", RECORDINGS[0])))
    block = next(line for line in lines if line["destination"] == 0x15)
    assert block["device"] == "DeltaSol MX [Controller]"
    assert block["fields"] == []
    assert block["sections"][0] == {
        "id": "01_8015_0D9F_10_2C47",
        "type": 10,
        "values": [1.9000000000000001, 25.0, 5020902],
    }


@pytest.mark.parametrize(("name", "count"), zip(RECORDINGS, (4607, 4609, 4608), strict=True))
def test_decode_all_recordings(capsys: pytest.CaptureFixture[str], name: str, count: int) -> None:
    lines = decode_lines(capsys, "--json", str(reference_file("recordings", name)))
    assert len(lines) == count
    unknown = [line for line in lines if line["device"].startswith("Unknown Device")]
    if name == "20140215_packets.vbus":
        assert unknown == [
            {
                "channel": 1,
                "destination": 0x2450,
                "source": 0x7A01,
                "command": 0,
                "device": "Unknown Device (0x7A01)",
                "fields": [],
            }
        ]
    else:
        assert unknown == []
    # 293 fields per full header set, 37 of them absent from the shorter frames sent.
    assert sum(len(line["fields"]) for line in lines[:16]) == 256


def test_decode_raw_capture_equals_recording(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    packets = [
        Packet(0x0010, 0x7E11, 0x0100, bytes(range(0x60, 0x60 + 100))),
        Packet(0x0010, 0x7E31, 0x0100, bytes(40)),
        Packet(0x2450, 0x7A01, 0x0000),
    ]
    recording = tmp_path / "capture.vbus"
    recording.write_bytes(
        write_recording(
            [HeaderSetStart(0), *(RecordedFrame(1000 + i, p) for i, p in enumerate(packets))]
        )
    )
    live = tmp_path / "capture.bin"
    live.write_bytes(b"\x00junk" + b"".join(p.encode() for p in packets))
    from_recording = decode_lines(capsys, "--json", str(recording))
    assert decode_lines(capsys, "--json", str(live)) == from_recording
    assert decode_lines(capsys, "--json", "--raw", str(live)) == from_recording
    assert [line["source"] for line in from_recording] == [0x7E11, 0x7E31, 0x7A01]
    assert from_recording[1]["fields"][0] == {
        "id": "000_4_0",
        "name": "Heat quantity",
        "value": 0,
        "unit": "Wh",
    }
    assert list(iter_packets(live.read_bytes())) == packets


def test_decode_template_wins_over_block_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A packet to 0x0015 that a VSF template matches is decoded by it (as the reference does).

    Only packets without a template are block-type packets: the Tuxhorn BHKW (0x105F, the one
    template with destination 0x0015) and an EM (template with destination mask 0x0000) have
    fields; the DeltaSol MX's block packet (protocol reference §9 vector) has sections.
    """
    bhkw = bytearray(60)
    bhkw[4:6] = (215).to_bytes(2, "little")
    bhkw[8:12] = (123456).to_bytes(4, "little")
    bhkw[16] = 55
    bhkw[52:56] = (4321).to_bytes(4, "little")
    module = (1500).to_bytes(4, "little") + bytes(8)
    live = tmp_path / "live.bin"
    live.write_bytes(
        Packet(0x0015, 0x105F, 0x0100, bytes(bhkw)).encode()
        + Packet(0x0015, 0x6651, 0x0100, module).encode()
        + Packet(0x0015, 0x7E11, 0x0100, BLOCK_PAYLOAD).encode()
    )
    bhkw_line, module_line, block_line = decode_lines(capsys, "--json", str(live))
    assert "sections" not in bhkw_line
    assert bhkw_line["device"] == "Tuxhorn BHKW"
    assert [(f["id"], f["value"], f["unit"]) for f in bhkw_line["fields"]] == [
        ("004_2_0", 21.5, "°C"),
        ("006_2_0", 0.0, "°C"),
        ("008_4_0", 123456, "Wh"),
        ("016_1_0", 55, "%"),
        ("017_1_0", 0, "%"),
        ("024_1_0", 0, ""),
        ("032_2_0", 0.0, "°C"),
        ("034_2_0", 0.0, "°C"),
        ("036_2_0", 0.0, "°C"),
        ("038_2_0", 0.0, "°C"),
        ("044_4_0", 0, "Wh"),
        ("052_4_0", 4321, "h"),
        ("056_4_0", 0, "h"),
    ]
    assert bhkw_line["fields"][0]["name"] == "SD3: Temperature sensor 1"
    assert "sections" not in module_line
    assert [(f["id"], f["name"], f["value"]) for f in module_line["fields"]] == [
        ("000_4_0", "Resistor 1", 1.5),
        ("004_4_0", "Resistor 2", 0.0),
        ("008_4_0", "Resistor 3", 0.0),
    ]
    assert block_line["fields"] == []
    assert [section["type"] for section in block_line["sections"]] == [0x0A, 0x0B, 0x08]
    assert block_line["sections"][0]["values"] == [1.9000000000000001, 25.0, 5020902]


def test_decode_languages_and_plain_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    live = tmp_path / "live.bin"
    payload = bytearray(100)
    payload[0:2] = (19).to_bytes(2, "little")
    live.write_bytes(Packet(0x0010, 0x7E11, 0x0100, bytes(payload), channel=0).encode())
    german = decode_lines(capsys, "--json", "--lang", "de", str(live))
    assert german[0]["device"] == "DeltaSol MX [Regler]"
    assert german[0]["fields"][0]["name"] == "Temperatur Sensor 1"
    assert main(["decode", str(live)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "DeltaSol MX [Controller] (00_0010_7E11_10_0100)"
    assert text[1] == "    Temperature sensor 1: 1.9 °C"


def test_decode_with_user_vsf(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    vsf = reference_file("test.vsf")
    live = tmp_path / "live.bin"
    live.write_bytes(Packet(0x0010, 0x7E31, 0x0100, bytes(48)).encode())
    lines = decode_lines(capsys, "--json", "--spec", str(vsf), str(live))
    assert lines[0]["device"] == "DeltaSol MX [WMZ #1]"
    assert lines[0]["fields"][0]["id"] == "000_4_0"


def test_decode_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["decode", str(tmp_path / "missing.vbus")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vbus decode: ")
    assert err.count("\n") == 1
    bad_vsf = tmp_path / "bad.vsf"
    bad_vsf.write_bytes(b"\x00" * 20)
    assert main(["decode", "--spec", str(bad_vsf), str(bad_vsf)]) == 1
    assert "VSF length field" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "pythonpath"),
    [
        ([str(Path(sys.executable).with_name("vbus"))], ""),  # the console script
        ([sys.executable, "-m", "aiovbus"], ""),
        ([sys.executable, "-m", "vbus"], "custom_components/resol_vbus"),  # from a checkout
    ],
    ids=["vbus", "python -m aiovbus", "python -m vbus"],
)
def test_help_runs_every_way(command: list[str], pythonpath: str) -> None:
    result = subprocess.run(  # noqa: S603
        [*command, "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "decode" in result.stdout


def test_library_never_imports_home_assistant_and_imports_relatively() -> None:
    """Beyond the standard library, only the distribution's declared dependencies (serialx)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]
        for requirement in project["dependencies"]
    }
    assert declared == {"serialx"}
    allowed = sys.stdlib_module_names | declared
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) >= 20
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top != "homeassistant", f"{source}: imports {name}"
                assert top not in ("custom_components", "vbus"), f"{source}: absolute {name}"
                assert top in allowed, f"{source}: undeclared import {name}"


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()
