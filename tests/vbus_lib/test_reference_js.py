"""Cross-implementation check: the reference library (npm resol-vbus 0.29.0) drives the emulator.

Skipped unless ``node`` and ``npm`` are on PATH and ``npm install resol-vbus@0.29.0`` works (it
installs into a temporary directory; nothing is cached in the repository).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from custom_components.resol_vbus.vbus.emulator import Emulator

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.slow]

SCRIPT = Path(__file__).parent / "js" / "exchange.js"
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
