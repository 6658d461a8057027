"""The controller: bus offers and hand-over, parameter requests and controller-level faults."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from aiovbus.catalog import catalog_for
from aiovbus.emulator import (
    MX_CHANGESET,
    ControllerSimulator,
    Emulator,
    Faults,
)
from aiovbus.protocol import Datagram, Packet

from .client import Client, answer, is_answer, is_offer, request, static, take_bus, within
from .common import MX, P1, R1_HASH, R1_INDEX, SECTION_7, SELF

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_section_7_exchange_is_byte_exact() -> None:
    async with Emulator(offer_interval=0.05, speed=20) as emulator:
        controller = emulator.controller()
        controller.store["Relais_Regler_R1_Handbetrieb"].value = 0
        client = await Client.open(emulator)
        await client.start()
        offer = await client.frame(is_offer)
        assert offer.encode() == bytes.fromhex(SECTION_7[0][1])
        assert bytes.fromhex(SECTION_7[0][1]) in client.data
        for (_tx, sent), (rx, expected) in zip(SECTION_7[1::2], SECTION_7[2::2], strict=False):
            assert rx == "RX"
            start = len(client.data)
            client.writer.write(bytes.fromhex(sent))
            reply = await client.frame(is_answer)
            assert reply.encode() == bytes.fromhex(expected)
            assert bytes.fromhex(expected) in client.data[start:]
        assert controller.store["Relais_Regler_R1_Handbetrieb"].value == 2
        assert controller.store.writes == [(R1_INDEX, 2)]
        client.writer.write(bytes.fromhex(SECTION_7[-1][1]))
        await within(controller.wait_for_master(None))
        confirmation = await client.frame(lambda frame: not is_offer(frame))
        assert isinstance(confirmation, Packet)  # no answer to 0600: the next v1 packet
        assert confirmation.source == MX
        await client.close()


async def test_bus_is_taken_only_within_the_offer_window() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        client.send(request(0x0300))  # no offer yet
        await within(controller.wait_for_received(1))
        assert (controller.ignored, controller.master) == (1, None)
        assert controller.offer_bus()
        await client.frame(is_offer)
        controller._offered_at -= 0.5  # half a second later: the 0.4 s window has closed
        client.send(request(0x0300))
        await within(controller.wait_for_received(2))
        assert (controller.ignored, controller.master) == (2, None)
        controller.offer_bus()
        client.send(request(0x0300, 0, 0, source=0x0030))  # the first device wins the bus
        assert await client.frame(is_offer)
        await within(controller.wait_for_master(0x0030))
        assert not controller.offer_bus()  # no offers while another master holds the bus
        client.send(request(0x0300))  # a device that does not hold the bus is ignored
        await within(controller.wait_for_received(4))
        assert controller.ignored == 3
        client.send(request(0x0600, source=0x0030))
        await within(controller.wait_for_master(None))
        assert (controller.offers, controller.handovers) == (2, 1)
        assert [d.source for d in controller.received] == [SELF, SELF, 0x0030, SELF, 0x0030]
        assert answer(0x0100, 0, MX_CHANGESET).encode() not in client.data  # nothing for SELF
        await client.close()


async def test_controller_is_silent_while_another_master_holds_the_bus_until_the_timeout() -> None:
    async with Emulator(offer_interval=0.02, bus_timeout=0.3, speed=50) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        taken = asyncio.get_running_loop().time()
        # Every frame after the answer must have been sent after the controller took the bus
        # back: neither live packets nor offers while 0020 was master. Offers and the first
        # packets may then come in either order.
        while not isinstance(frame := await client.frame(), Packet):
            assert is_offer(frame)
            assert controller.master is None
        assert controller.master is None
        assert asyncio.get_running_loop().time() - taken >= 0.25
        assert frame.source == MX
        await client.close()


async def test_release_by_0600_sends_the_next_packets_at_once() -> None:
    # One cycle per 100 s: only the release can make the controller send packets now.
    async with Emulator(offer_interval=0.02, speed=0.01) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        client.send(request(0x0600))
        confirmation = await client.frame(lambda frame: not is_offer(frame))
        assert isinstance(confirmation, Packet)
        assert controller.master is None
        await client.close()


async def test_clients_share_the_bus() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        first, second = await Client.open(emulator), await Client.open(emulator)
        await first.start()
        await second.start()
        await take_bus(first, controller)
        assert await second.frame(lambda f: is_answer(f) or f.destination == MX) == request(0x0300)
        assert await second.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        first.send(request(0x0300, R1_INDEX))
        assert await first.frame(is_answer) == answer(0x0100, R1_INDEX, 2)
        assert await second.frame() == request(0x0300, R1_INDEX)
        assert await second.frame() == answer(0x0100, R1_INDEX, 2)
        assert request(0x0300).encode() not in first.data  # the sender's frames are not echoed
        to_module = Datagram(0x7E12, SELF, 0x0300)  # another device's business
        first.send(to_module)
        assert await second.frame() == to_module
        assert controller.received_total == 2
        await first.close()
        await second.close()


async def test_writes_are_clamped_and_unknown_indices_refused() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        exchanges = [
            (request(0x0200, R1_INDEX, 9), answer(0x0100, R1_INDEX, 4)),
            (request(0x0400, R1_INDEX, -3), answer(0x0100, R1_INDEX, 0)),
            (request(0x0200, 13730, -500), answer(0x0100, 13730, -200)),  # negative limits
            (request(0x0200, 3591, 700), answer(0x0100, 3591, 700)),
            (request(0x0300, 3591), answer(0x0100, 3591, 700)),
            (request(0x0300, 1234), answer(0x4300, 1234)),
            (request(0x0200, 1234, 1), answer(0x4300, 1234)),
            (request(0x0305, R1_INDEX), answer(0x4305, R1_INDEX)),  # no sub-indices
            (request(0x0200, 0, 5), answer(0x0100, 0, MX_CHANGESET)),  # changeset is read-only
            (request(0x1000, R1_INDEX), answer(0x0100, R1_INDEX, R1_HASH)),
            (request(0x1000, 0), answer(0x0100, 0, 0)),
            (request(0x1000, 4321), answer(0x4300, 4321)),
            (request(0x1100, 0, R1_HASH), answer(0x1101, R1_INDEX, R1_HASH)),
        ]
        for sent, expected in exchanges:
            client.send(sent)
            assert await client.frame(is_answer) == expected
        # An unknown hash gets no answer; the resynchronising read is answered next.
        client.send(request(0x1100, 0, 12345), request(0x1300), request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        controller.lookup_answer_command = 0x0100
        client.send(request(0x1100, 0, R1_HASH))
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, R1_HASH)
        assert controller.store.writes == [
            (R1_INDEX, 9),
            (R1_INDEX, -3),
            (13730, -500),
            (3591, 700),
        ]
        await client.close()


async def test_late_answers_reproduce_the_mis_association_scenario() -> None:
    faults = Faults()
    async with Emulator(channels=static(P1), offer_interval=None, faults=faults) as emulator:
        controller = emulator.controller()
        controller.lookup_answer_command = 0x0100
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        lookup = request(0x1100, 0, R1_HASH)
        faults.answer_delay = 0.1
        client.send(lookup)  # L1: the controller is "busy"
        await within(controller.wait_for_received(2))
        faults.answer_delay = 0.4  # even busier: L2's answer will come after R was sent
        client.send(lookup)  # L2: the client's retry
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, R1_HASH)  # L1's answer
        assert client.frames == []  # L2's answer has not arrived yet
        client.send(request(0x0300, R1_INDEX))  # R
        # The next answer belongs to L2 but has R's command and index: a naive client takes
        # the hash for the value of index 1977 (vbus-parameterization.md §6).
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, R1_HASH)
        assert await client.frame(is_answer) == answer(0x0100, R1_INDEX, 2)  # R, too late
        faults.answer_delay = 0
        faults.duplicate_answers = True
        client.send(request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        faults.duplicate_answers = False
        faults.drop_answers = 1
        client.send(request(0x0300, R1_INDEX), request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, MX_CHANGESET)
        assert faults.drop_answers == 0
        await client.close()


async def test_changeset_changes_at_runtime() -> None:
    async with Emulator(channels=static(P1), offer_interval=None) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        controller.store.firmware_update(0x12345678, index_shift=10)
        client.send(request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, 0x12345678)
        client.send(request(0x1100, 0, R1_HASH))
        assert await client.frame(is_answer) == answer(0x1101, R1_INDEX + 10, R1_HASH)
        client.send(request(0x0300, R1_INDEX))
        assert await client.frame(is_answer) == answer(0x4300, R1_INDEX)
        controller.store.changeset = 0x9ABCDEF0  # above 0x7FFFFFFF: sent as a signed p32
        client.send(request(0x0300))
        assert await client.frame(is_answer) == answer(0x0100, 0, 0x9ABCDEF0 - (1 << 32))
        await client.close()


async def test_never_offer_bus_and_offer_loop() -> None:
    faults = Faults(never_offer_bus=True)
    async with Emulator(offer_interval=0.01, faults=faults, channels=static(P1)) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        assert not controller.offer_bus()
        await within(controller.wait_for_withheld(3))  # the one above, then two of the loop
        assert (controller.offers, controller.withheld) == (0, 3)
        faults.never_offer_bus = False
        await within(controller.wait_for_offers(3))
        assert is_offer(await client.frame(is_offer))
        await client.close()


async def test_every_datagram_from_the_master_restarts_the_bus_timeout() -> None:
    async with Emulator(channels=static(P1), offer_interval=None, bus_timeout=0.2) as emulator:
        controller = emulator.controller()
        client = await Client.open(emulator)
        await client.start()
        await take_bus(client, controller)
        assert controller._release_timer is not None
        deadline = controller._release_timer.when()
        client.send(request(0x0300, source=0x0030))  # not the master: no effect on the timer
        await within(controller.wait_for_received(2))
        assert controller._release_timer.when() == deadline
        client.send(request(0x0300))
        await client.frame(is_answer)
        assert controller._release_timer.when() > deadline
        await within(controller.wait_for_master(None))
        assert controller._release_timer is None
        await client.close()


def test_controller_simulator_standalone_defaults() -> None:
    controller = ControllerSimulator(0x4212)
    assert controller.store.changeset == zlib.crc32(b"4212") & 0x7FFFFFFF
    # Every catalog value of the DeltaSol C, added after index 20000.
    catalog = catalog_for(0x4212)
    assert catalog is not None
    assert len(controller.store) == len(catalog.values) == 16
    assert controller.store.index_of(catalog.values[0].id_hash) == 20001
    controller.send((b"ignored",))
    controller.on_release()
    controller.release_bus()  # not held: nothing happens
    assert controller.master is None
