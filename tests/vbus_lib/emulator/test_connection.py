"""Personalities and the handshake, line by line, refusals included; a connection in data mode."""

from __future__ import annotations

import asyncio

import pytest

from aiovbus.emulator import (
    ChannelSource,
    Emulator,
    Faults,
    Personality,
    StaticSource,
    SyntheticSource,
)
from aiovbus.emulator.connection import Connection
from aiovbus.protocol import Datagram, Packet
from aiovbus.specification import Specification

from .client import Client, static, within
from .common import MX, NEED_PASS, NO_CHANNEL, OK_DATA, OK_PASS, P1, P2, REJECTED, TIMEOUT, UNKNOWN

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_dl2_handshake_lines_and_data_in_the_same_segment() -> None:
    async with Emulator(channels=static(P1, P2), offer_interval=None) as emulator:
        reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
        async with asyncio.timeout(TIMEOUT):
            assert (
                await reader.readline() == b"+HELLO This is DL2-001E66E7A002, at your service!\r\n"
            )
            writer.write(b"PASS wrong\r\n")
            assert await reader.readline() == REJECTED
            writer.write(b"PASS vbus\r\n")  # a failed PASS did not close the connection
            assert await reader.readline() == OK_PASS
            writer.write(b"DATA\r\n")
            assert await reader.read(65536) == OK_DATA + P1.encode() + P2.encode()
        # A later client gets the current packets together with the DATA reply as well.
        second = await Client.open(emulator)
        assert await second.line() == b"+HELLO This is DL2-001E66E7A002, at your service!\r\n"
        second.writer.write(b"PASS vbus\r\nDATA\r\n")
        assert await second.line() == OK_PASS
        async with asyncio.timeout(TIMEOUT):
            assert await second.reader.read(65536) == OK_DATA + P1.encode() + P2.encode()
        assert emulator.connections == 2
        writer.close()
        await second.close()
        await within(emulator.wait_connections(0))


@pytest.mark.parametrize(
    ("personality", "greeting"),
    [
        (Personality.LAN, b"+HELLO This is VBus/LAN-001E66E7A00B, at your service!\r\n"),
        (Personality.DL2, b"+HELLO This is DL2-001E66E7A002, at your service!\r\n"),
        (Personality.KM2, b"+HELLO This is KM2-A84041E7A00A, at your service!\r\n"),
    ],
)
async def test_single_channel_devices_reject_connect_and_channel_commands(
    personality: Personality, greeting: bytes
) -> None:
    async with Emulator(personality=personality, channels=static(P1)) as emulator:
        client = await Client.open(emulator)
        assert await client.line() == greeting
        assert await client.command("CONNECT mylogger") == UNKNOWN
        assert await client.command("DATA") == NEED_PASS
        assert await client.command("pass vbus") == UNKNOWN  # commands are case-sensitive
        assert await client.command("HELLO") == UNKNOWN
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNELLIST") == UNKNOWN
        assert await client.command("CHANNEL 1") == UNKNOWN
        assert await client.command("QUIT") == b"+OK: Bye\r\n"
        assert await client.eof() == b""
        await client.close()


async def test_lf_only_lines_empty_lines_and_overlong_lines() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        client = await Client.open(emulator)
        await client.line()
        client.writer.write(b"\r\n\n  \nPASS vbus\n")
        assert await client.line() == OK_PASS
        client.writer.write(b"X" * 5000 + b"\n")
        assert await client.line() == b'-ERROR: "Error: Line too long"\r\n'
        assert await client.eof() == b""
        await client.close()


async def test_vbusnet_needs_connect_with_a_known_via_tag_before_pass() -> None:
    async with Emulator(
        personality=Personality.VBUSNET, via_tags=("d01234567890",), channels=static(P1)
    ) as emulator:
        client = await Client.open(emulator)
        assert await client.line() == (
            b"+HELLO This is VBus.net on behalf of all its devices, welcome, stranger!\r\n"
        )
        assert await client.command("PASS vbus") == (
            b'-ERROR: "Error: CONNECT to a device first"\r\n'
        )
        assert await client.command("CONNECT nobody") == b'-ERROR: "Error: Unknown via tag"\r\n'
        assert await client.command("PASS vbus") == (
            b'-ERROR: "Error: CONNECT to a device first"\r\n'
        )
        assert await client.command("CONNECT d01234567890") == b"+OK: Connection established\r\n"
        assert await client.command("PASS wrong") == REJECTED
        assert await client.command("CHANNELLIST") == NEED_PASS
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNELLIST") == b"*1:DeltaSol MX\r\n"
        assert await client.line() == b"+OK: Now you know my fellows...\r\n"
        assert await client.command("CHANNEL 1") == b"+OK: Channel selected\r\n"
        assert await client.command("DATA") == OK_DATA
        assert await client.frame() == P1
        await client.close()


async def test_dl3_lists_named_channels_and_streams_the_selected_one() -> None:
    channels: dict[int, ChannelSource] = {
        1: SyntheticSource(MX),
        2: SyntheticSource(0x4212),
        4: StaticSource(P2, controller=MX, name="Garage"),
    }
    async with Emulator(
        personality=Personality.DL3, channels=channels, offer_interval=None
    ) as emulator:
        client = await Client.open(emulator)
        assert await client.line() == b"+HELLO This is DL3-001E66E7A003, at your service!\r\n"
        assert await client.command("CHANNELLIST") == NEED_PASS
        assert await client.command("CHANNEL 2") == NEED_PASS
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNELLIST") == b"*1:DeltaSol MX\r\n"
        assert [await client.line() for _ in range(3)] == [
            b"*2:DeltaSol C\r\n",
            b"*4:Garage\r\n",
            b"+OK: Now you know my fellows...\r\n",
        ]
        for wrong in ("3", "7", "x", "", "-1"):
            assert await client.command(f"CHANNEL {wrong}".strip()) == NO_CHANNEL
        assert await client.command("CHANNEL 2") == b"+OK: Channel selected\r\n"
        assert await client.command("DATA") == OK_DATA
        deltasol_c = await client.frame()
        assert isinstance(deltasol_c, Packet)
        assert (deltasol_c.source, deltasol_c.destination) == (0x4212, 0x0010)

        mx_client = await Client.open(emulator)
        await mx_client.start(channel=1)
        assert {(await mx_client.frame()).source for _ in range(5)} == {
            0x7E11,
            0x7E12,
            0x7E21,
            0x7E31,
            0x7E32,
        }
        # DATA without CHANNEL streams channel 0: the DL3's own inputs (no bus master there).
        own = await Client.open(emulator)
        await own.start()
        dl3 = await own.frame()
        assert isinstance(dl3, Packet)
        assert dl3.source == 0x0053
        resistor = Specification.bundled().decoder_for(dl3).decode(dl3.frame_data)[0]
        assert 900 < resistor < 1300
        channel_zero = await Client.open(emulator)
        await channel_zero.start(channel=0)
        assert (await channel_zero.frame()).source == 0x0053
        assert sorted(emulator.controllers) == [1, 2, 4]
        with pytest.raises(KeyError):
            emulator.controller(0)
        for each in (client, mx_client, own, channel_zero):
            await each.close()


async def test_raw_personality_streams_from_connect_without_handshake() -> None:
    async with Emulator(
        personality=Personality.RAW, channels=static(P1, P2), offer_interval=None
    ) as emulator:
        client = await Client.open(emulator)
        async with asyncio.timeout(TIMEOUT):
            assert await client.reader.read(65536) == P1.encode() + P2.encode()
        assert emulator.describe() == f"emulating raw on 127.0.0.1:{emulator.port} (no handshake)"
        await client.close()


async def test_refused_password_channel_and_data_faults() -> None:
    faults = Faults(refuse_password=True)
    async with Emulator(
        personality=Personality.DL3, channels=static(P1), faults=faults
    ) as emulator:
        client = await Client.open(emulator)
        await client.line()
        assert await client.command("PASS vbus") == REJECTED
        assert await client.command("DATA") == NEED_PASS
        faults.refuse_password = False
        faults.reject_channel = True
        faults.reject_data = True
        assert await client.command("PASS vbus") == OK_PASS
        assert await client.command("CHANNEL 1") == NO_CHANNEL
        assert await client.command("DATA") == b'-ERROR: "Error: Data mode not available"\r\n'
        faults.reject_channel = faults.reject_data = False
        assert await client.command("CHANNEL 1") == b"+OK: Channel selected\r\n"
        assert await client.command("DATA") == OK_DATA
        assert await client.frame() == P1
        await client.close()


async def test_slow_clients_lose_data_instead_of_growing_the_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        client = await Client.open(emulator)
        await client.start()
        assert await client.frame() == P1
        with monkeypatch.context() as patch:
            patch.setattr(Connection, "high_water", -1)  # every client is "behind"
            assert emulator.controller().offer_bus()  # lost for this client
        assert emulator.controller().offer_bus()
        assert await client.read() == Datagram(0, MX, 0x0500).encode()
        await client.close()
