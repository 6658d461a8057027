"""The soak (issue 8, §3): one simulated hour here, 24 with ``scripts/soak``.

``VBUS_SOAK_HOURS`` sets the simulated hours of this test (``VBUS_SOAK_HOURS=24`` runs the long
soak inside the test suite). See :mod:`.soak` for what runs and what is measured.
"""

from __future__ import annotations

import os
import sys

import pytest

from aiovbus.emulator import MX_CHANGESET
from tests.vbus_lib.conftest import RECORDINGS, reference_file

from .soak import GROWTH_LIMIT, HOUR, VALUE_ID, WRITE_EVERY, Soak

HOURS = float(os.environ.get("VBUS_SOAK_HOURS", "1"))

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.slow]


async def test_soak(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [reference_file("recordings", name) for name in RECORDINGS]
    soak = Soak(paths, HOURS, trace_frames=1)
    report = await soak.run()
    with capsys.disabled():  # the figures belong in the test log
        sys.stdout.write("\n" + "\n".join(report.lines()) + "\n")

    writes = int(HOURS * HOUR) // WRITE_EVERY  # one every five minutes: 12 per hour
    assert report.writes == [(n % 5, n % 5) for n in range(writes)]
    assert report.accepted_writes == writes  # by the emulated controller, at index 1977 …
    assert report.misplaced_writes == 0  # … with the values requested, in order
    store = soak.emulator.controller(1).store
    assert store.changeset == MX_CHANGESET
    assert store[VALUE_ID].index == 1977
    assert store[VALUE_ID].value == (writes - 1) % 5

    drops = report.expected_drops()  # four per hour
    assert drops[:4] == ["reboot", "cut", "silent", "rst"]
    assert report.drops == drops
    assert report.reconnects == len(drops)
    assert report.connects == len(drops) + 1
    assert report.states == [
        "connecting",
        "connected",
        *["disconnected", "connected"] * len(drops),
        "stopped",
    ]
    assert report.warnings == []

    # The session, its watchdog, the emulator's server connection and channel timeline, and
    # the test itself, at every checkpoint.
    assert report.tasks == {5}
    assert len(report.checkpoints) == (int(HOURS * HOUR) - 1200) // 600 + 1
    assert report.memory_growth <= GROWTH_LIMIT
    assert report.problems() == []

    assert report.cycles >= HOURS * HOUR
    assert report.frames == report.packets + report.datagrams
    assert report.frames > 14 * HOURS * HOUR  # about 16 frames per header set, some lost
    assert report.packets_decoded > 0.9 * report.packets
    assert report.checksum_errors > 0  # the corrupted minute of every hour
