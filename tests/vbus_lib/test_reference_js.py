"""Cross-implementation check: the reference library (npm resol-vbus 0.29.0) drives the emulator.

Skipped unless ``node`` and ``npm`` are on PATH and ``npm install resol-vbus@0.29.0`` works (it
installs into a temporary directory; nothing is cached in the repository).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from aiovbus.emulator import Emulator
from aiovbus.output import PacketJsonFormatter
from aiovbus.protocol import Packet
from aiovbus.specification import Specification

from .conftest import reference_file

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.slow]

SCRIPT = Path(__file__).parent / "js" / "exchange.js"
DECODE_SCRIPT = Path(__file__).parent / "js" / "decode.js"
PACKAGE = "resol-vbus@0.29.0"


@pytest.fixture(scope="module")
def node_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``node`` and a node_modules directory with the reference library."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the reference-library check")
    prefix = tmp_path_factory.mktemp("resol-vbus-npm")
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", PACKAGE],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {PACKAGE} timed out")
    if result.returncode != 0:
        pytest.skip(f"npm install {PACKAGE} failed: {result.stderr.strip()[-500:]}")
    return node, prefix / "node_modules"


async def test_reference_library_completes_a_parameter_exchange(
    node_path: tuple[str, Path],
) -> None:
    node, modules = node_path
    async with Emulator(offer_interval=0.5, password="s3cret") as emulator:
        controller = emulator.controller()
        controller.store["Relais_Regler_R1_Handbetrieb"].value = 0
        process = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            str(emulator.port),
            "s3cret",
            env={**os.environ, "NODE_PATH": str(modules)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert json.loads(out) == {
            "address": 0x7E11,
            "lookupCommand": 0x1101,
            "index": 1977,
            "written": 2,
            "read": 2,
            "confirmedBy": 0x7E11,
        }
        assert controller.store["Relais_Regler_R1_Handbetrieb"].value == 2
        assert controller.store.writes == [(1977, 2)]
        async with asyncio.timeout(5):
            await controller.wait_for_master(None)


def test_templates_to_destination_0015_decode_as_in_the_reference(
    node_path: tuple[str, Path],
) -> None:
    """Packets to 0x0015 that a template matches are template packets, not block-type ones.

    The Tuxhorn BHKW's template (0x105F) and the templates with destination mask 0x0000, at a
    length that holds every field and at one that cuts some off. Both sides use the VSF file the
    bundled specification is made from (the reference library's own is from 2022).
    """
    node, modules = node_path
    vsf = reference_file("vbus_specification.vsf")
    rng = random.Random(0x105F)
    packets = [
        Packet(0x0015, source, 0x0100, rng.randbytes(length))
        for source in (0x105F, 0x112E, 0x4011, 0x4421, 0x6511, 0x6521, 0x6651)
        for length in (60, 12)
    ]
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [
            node,
            str(DECODE_SCRIPT),
            str(vsf),
            *(
                f"{p.destination:04X}_{p.source:04X}_{p.command:04X}_{p.frame_data.hex()}"
                for p in packets
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    spec = Specification.bundled()
    formatter = PacketJsonFormatter(spec)
    counts = []
    for packet, reference in zip(packets, json.loads(result.stdout), strict=True):
        line = json.loads(formatter.line(packet))
        assert "sections" not in line
        ours = {field["id"]: field["value"] for field in line["fields"]}
        theirs = {
            field["id"].removeprefix(f"{packet.packet_id}_"): field["value"]
            for field in reference
            if field["value"] is not None
        }
        decoder = spec.decoder_for(packet)
        assert decoder is not None
        # V8's Math.pow(10, -4) is 9.999999999999999e-05, not 1e-4: the reference's precision-4
        # values differ from 10 ** -4 arithmetic in the last bit.
        rough = {f.field_id for f in decoder.fields if f.precision == 4}
        assert ours.keys() == theirs.keys(), packet.packet_id
        for field_id, value in ours.items():
            expected = theirs[field_id]
            assert value == (pytest.approx(expected, rel=1e-15) if field_id in rough else expected)
        counts.append(len(ours))
    # Fields present at 60 and at 12 bytes: 105F (all 13 at 60), 112E, 4011, 4421, 6511, 6521, 6651.
    assert counts == [13, 3, 10, 2, 7, 5, 10, 6, 18, 12, 6, 6, 6, 3]
