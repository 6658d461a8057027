"""Connection faults: drops, resets, corruption and silence; faults swapped at runtime."""

from __future__ import annotations

import pytest

from aiovbus.emulator import Emulator, Faults
from aiovbus.protocol import Datagram

from .client import Client, static, within
from .common import MX, OK_DATA, OK_PASS, P1, P2

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        # The frame holding byte 30 is still sent whole...
        (Faults(drop_after_bytes=30), P1.encode() + P2.encode()),
        (Faults(drop_after_bytes=22), P1.encode()),
        # ...unless the close is to cut a frame: then exactly 30 bytes.
        (Faults(drop_after_bytes=30, cut_mid_frame=True), (P1.encode() + P2.encode())[:30]),
    ],
)
async def test_drop_after_bytes(faults: Faults, expected: bytes) -> None:
    async with Emulator(channels=static(P1, P2), offer_interval=None, faults=faults) as emulator:
        client = await Client.open(emulator)
        await client.start()
        assert await client.eof() == expected
        assert client.receiver.buffered == len(expected) - 22 * len(client.frames)
        await client.close()


async def test_hard_close_resets_the_connection() -> None:
    faults = Faults(drop_after_bytes=1, hard_close=True)
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        client = await Client.open(emulator)
        with pytest.raises(ConnectionResetError):  # noqa: PT012 - the reset may hit either
            await client.start()
            await client.eof()
        await client.close()


async def test_corrupt_every_nth_data_byte() -> None:
    faults = Faults(corrupt_every=7)
    async with Emulator(channels=static(P1, P2), offer_interval=None, faults=faults) as emulator:
        client = await Client.open(emulator)
        await client.start()
        wire = bytearray(P1.encode() + P2.encode())
        for position in range(6, len(wire), 7):
            wire[position] ^= 0x01
        while len(client.data) < len(wire):
            await client.read()
        assert bytes(client.data) == bytes(wire)
        assert client.frames == []
        assert client.receiver.stats.frames == 0
        await client.close()


async def test_silent_sends_nothing_but_keeps_the_connection() -> None:
    faults = Faults(silent=True)
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await within(emulator.wait_connections(1))
        faults.silent = False
        assert await client.command("PASS vbus") == OK_PASS  # the greeting never came
        assert await client.command("DATA") == OK_DATA
        assert await client.frame() == P1
        faults.silent = True
        assert controller.offer_bus()  # lost
        faults.silent = False
        assert controller.offer_bus()
        assert await client.read() == Datagram(0, MX, 0x0500).encode()
        assert controller.offers == 2
        assert emulator.connections == 1
        await client.close()


async def test_faults_can_be_replaced_at_runtime() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        emulator.faults = Faults(never_offer_bus=True)
        assert emulator.controller().faults is emulator.faults
        assert not emulator.controller().offer_bus()
