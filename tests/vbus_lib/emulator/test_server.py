"""The server: configuration, reboot and stop."""

from __future__ import annotations

import asyncio

import pytest

from aiovbus.emulator import Emulator, Faults, Personality, StaticSource

from .client import Client, is_offer, request, static, within
from .common import P1, SELF

pytestmark = pytest.mark.usefixtures("socket_enabled")


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="exactly one channel"):
        Emulator(channels={1: StaticSource(), 2: StaticSource()})
    with pytest.raises(ValueError, match=r"numbered 0\.\.6"):
        Emulator(personality=Personality.DL3, channels={7: StaticSource()})
    with pytest.raises(ValueError, match=r"numbered 0\.\.6"):
        Emulator(channels={})
    emulator = Emulator(channels={1: StaticSource(controller=None)})
    assert emulator.controllers == {}
    with pytest.raises(KeyError):
        emulator.controller()
    assert emulator.channel_names == {1: "VBus"}
    assert Emulator(password="secret").describe() == (
        "emulating dl2 on 127.0.0.1:0 (custom password)"
    )


async def test_reboot_closes_connections_and_greets_again() -> None:
    faults = Faults(cut_mid_frame=True)
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        streaming, idle = await Client.open(emulator), await Client.open(emulator)
        await streaming.start()
        await idle.line()
        assert await streaming.frame() == P1
        await emulator.reboot()
        assert await streaming.eof() == P1.encode()[:11]  # a frame cut in the middle
        assert streaming.receiver.buffered == 11
        assert await idle.eof() == b""
        assert emulator.connections == 0
        assert emulator.reboots == 1
        again = await Client.open(emulator)
        assert (await again.line()).startswith(b"+HELLO ")
        task = asyncio.create_task(emulator.reboot(downtime=0.2))
        await within(emulator.wait_connections(0))
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", emulator.port)
        await task
        after = await Client.open(emulator)
        assert (await after.line()).startswith(b"+HELLO ")
        for client in (streaming, idle, again, after):
            await client.close()


async def test_stop_closes_everything_and_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    emulator = Emulator(offer_interval=0.01, faults=Faults(answer_delay=30), speed=10)
    await emulator.start()
    streaming, idle = await Client.open(emulator), await Client.open(emulator)
    await streaming.start()
    await idle.line()
    controller = emulator.controller()
    await streaming.frame(is_offer)
    streaming.send(request(0x0300))  # its answer is scheduled 30 s later
    await within(controller.wait_for_master(SELF))
    await emulator.stop()
    assert await streaming.eof() is not None
    assert await idle.eof() == b""
    assert asyncio.all_tasks() == before
    assert emulator.connections == 0
    for client in (streaming, idle):
        await client.close()
    with pytest.raises(OSError):  # noqa: PT011 - refused, whatever errno the OS uses
        await asyncio.open_connection("127.0.0.1", emulator.port)


async def test_connections_arriving_during_stop_are_closed_at_once() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        emulator._stopping = True  # as between stop() closing the server and the handlers
        client = await Client.open(emulator)
        assert await client.eof() == b""
        assert emulator.connections == 0
        await client.close()
