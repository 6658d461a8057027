"""Fixtures for the library tests: the optional reference data in ``../shared``, serial ports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aiovbus.emulator import Emulator, StaticSource

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

REFERENCE_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "data"
RECORDINGS = ("20140214_packets.vbus", "20140215_packets.vbus", "20140216_packets.vbus")


def reference_file(*parts: str) -> Path:
    """Path of a reference data file; skips the test when ``../shared`` is not there."""
    path = REFERENCE_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"reference data {'/'.join(parts)} not available (../shared is absent)")
    return path


@pytest.fixture
def recording_bytes() -> bytes:
    """The first DL3 recording (DeltaSol MX system, 2014-02-14)."""
    return reference_file("recordings", RECORDINGS[0]).read_bytes()


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """The library tests need no Home Assistant instance (overrides the suite-wide fixture)."""


@pytest.fixture
def serial_link(tmp_path: Path) -> Path:
    """Where a serial port appears, named like a VBus/USB adapter's stable link."""
    return tmp_path / "usb-RESOL_VBus_USB-if00"


@pytest.fixture
async def quiet_port(serial_link: Path) -> AsyncIterator[Emulator]:
    """An emulator's serial port at ``serial_link`` that is there but carries nothing."""
    emulator = Emulator(channels={1: StaticSource(controller=None)})
    await emulator.open_serial(serial_link)
    yield emulator
    await emulator.stop()
