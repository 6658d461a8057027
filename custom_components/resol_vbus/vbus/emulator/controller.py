"""The controller simulator: the bus master that offers the bus and answers parameter requests."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from ..aio import cancel_and_wait
from ..protocol import (
    BROADCAST,
    CMD_ANSWER,
    CMD_GET,
    CMD_GET_HASH,
    CMD_LOOKUP,
    CMD_LOOKUP_ANSWER,
    CMD_NACK,
    CMD_OFFER,
    CMD_RELEASE,
    CMD_SET,
    CMD_SET_SAVE,
    Datagram,
)
from .faults import Faults
from .store import ParameterStore

if TYPE_CHECKING:
    from collections.abc import Callable


class Changes:
    """Lets coroutines wait until a condition on some state becomes true."""

    def __init__(self) -> None:
        """Start with nobody waiting."""
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        """The state changed: wake the waiters up to check their conditions."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` is true, checking it again at every :meth:`notify`."""
        while not predicate():
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _ignore_frames(_frames: tuple[bytes, ...]) -> None:
    """Default sink of a controller that is not attached to a bus."""


def _nothing() -> None:
    """Default release callback."""


class ControllerSimulator:
    """The bus master of a channel: offers the bus, hands it over and answers datagrams.

    ``send`` receives the frames the controller puts on the bus; ``on_release`` is called when
    it takes the bus back. Answers go to the requester's address with the controller as source.
    ``received`` keeps the last 1024 datagrams addressed to the controller, ``ignored`` counts
    those it did not act on (no bus, outside the offer window, another master), ``handovers``
    the bus sessions it granted (a request within the offer window took the bus).
    """

    def __init__(
        self,
        address: int,
        store: ParameterStore | None = None,
        *,
        offer_interval: float | None = 1.0,
        offer_window: float = 0.4,
        bus_timeout: float = 10.0,
        lookup_answer_command: int = CMD_LOOKUP_ANSWER,
        faults: Faults | None = None,
    ) -> None:
        """Create the controller at ``address`` (store: :meth:`ParameterStore.default_for`)."""
        self.address = address
        self.store = store if store is not None else ParameterStore.default_for(address)
        self.offer_interval = offer_interval
        self.offer_window = offer_window
        self.bus_timeout = bus_timeout
        self.lookup_answer_command = lookup_answer_command
        self.faults = faults if faults is not None else Faults()
        self.send: Callable[[tuple[bytes, ...]], None] = _ignore_frames
        self.on_release: Callable[[], None] = _nothing
        self.received: deque[Datagram] = deque(maxlen=1024)
        self.offers = 0
        self.withheld = 0  # offers not sent because of ``faults.never_offer_bus``
        self.ignored = 0
        self.received_total = 0
        self.handovers = 0
        self._master: int | None = None
        self._offered_at: float | None = None
        self._bus_free = asyncio.Event()
        self._bus_free.set()
        self._changes = Changes()
        self._offer_task: asyncio.Task[None] | None = None
        self._release_timer: asyncio.TimerHandle | None = None
        self._delayed: set[asyncio.TimerHandle] = set()

    @property
    def master(self) -> int | None:
        """Address of the device holding the bus; ``None`` while the controller is master."""
        return self._master

    def start(self) -> None:
        """Start offering the bus every ``offer_interval`` seconds (needs a running loop)."""
        if self._offer_task is None and self.offer_interval is not None:
            self._offer_task = asyncio.get_running_loop().create_task(self._offer_loop())

    async def stop(self) -> None:
        """Stop offering; cancel the bus timeout and delayed answers."""
        task, self._offer_task = self._offer_task, None
        await cancel_and_wait(task)
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()

    async def _offer_loop(self) -> None:
        interval = self.offer_interval
        assert interval is not None  # noqa: S101 - checked by start()
        while True:
            await asyncio.sleep(interval)
            self.offer_bus()

    def offer_bus(self) -> bool:
        """Broadcast a bus offer now (if the controller is master); return whether it did."""
        if self._master is not None:
            return False
        if self.faults.never_offer_bus:
            self.withheld += 1
            self._changes.notify()
            return False
        self._offered_at = asyncio.get_running_loop().time()
        self.offers += 1
        self.send((Datagram(BROADCAST, self.address, CMD_OFFER).encode(),))
        self._changes.notify()
        return True

    def release_bus(self) -> None:
        """Take the bus back (as on ``0600`` or the timeout) and resume live packets."""
        if self._master is None:
            return
        self._master = None
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self._bus_free.set()
        self._changes.notify()
        self.on_release()

    async def wait_bus_free(self) -> None:
        """Wait until the controller is master."""
        await self._bus_free.wait()

    async def wait_for_master(self, master: int | None) -> None:
        """Wait until ``master`` holds the bus (``None``: until the controller has it back)."""
        await self._changes.wait_for(lambda: self._master == master)

    async def wait_for_offers(self, count: int) -> None:
        """Wait until ``count`` offers have been sent in total."""
        await self._changes.wait_for(lambda: self.offers >= count)

    async def wait_for_withheld(self, count: int) -> None:
        """Wait until ``never_offer_bus`` has held back ``count`` offers in total."""
        await self._changes.wait_for(lambda: self.withheld >= count)

    async def wait_for_received(self, count: int) -> None:
        """Wait until ``count`` datagrams addressed to the controller have arrived in total."""
        await self._changes.wait_for(lambda: self.received_total >= count)

    def receive(self, datagram: Datagram) -> None:
        """Handle a datagram seen on the bus."""
        if datagram.destination != self.address:
            return
        self.received.append(datagram)
        self.received_total += 1
        self._changes.notify()
        loop = asyncio.get_running_loop()
        if self._master is None:
            offered = self._offered_at
            if offered is None or loop.time() - offered > self.offer_window:
                self.ignored += 1
                return
            self._master = datagram.source
            self._offered_at = None
            self.handovers += 1
            self._bus_free.clear()
            self._changes.notify()
        elif datagram.source != self._master:
            self.ignored += 1
            return
        if self._release_timer is not None:
            self._release_timer.cancel()
        self._release_timer = loop.call_later(self.bus_timeout, self.release_bus)
        if datagram.command == CMD_RELEASE:
            self.release_bus()
            return
        answer = self._answer(datagram)
        if answer is not None:
            self._send_answer(answer)

    def _answer(self, request: Datagram) -> Datagram | None:
        store = self.store
        command, index, value = request.command, request.param16, request.param32
        base, sub = command & 0xFF80, command & 0x7F

        def reply(command: int, param16: int, param32: int) -> Datagram:
            return Datagram(request.source, self.address, command, param16, _signed32(param32))

        if base in (CMD_GET, CMD_SET, CMD_SET_SAVE):
            result = None
            if not sub:
                result = store.read(index) if base == CMD_GET else store.write(index, value)
            if result is None:
                return reply(CMD_NACK | sub, index, 0)
            return reply(CMD_ANSWER | sub, index, result)
        if command == CMD_GET_HASH:
            id_hash = store.hash_of(index)
            if id_hash is None:
                return reply(CMD_NACK, index, 0)
            return reply(CMD_ANSWER, index, id_hash)
        if command == CMD_LOOKUP:
            found = store.index_of(value)
            if found is None:
                return None
            if self.faults.update_after_lookups > 0:
                self.faults.update_after_lookups -= 1
                store.firmware_update((store.changeset + 1) & 0xFFFFFFFF, index_shift=1)
            return reply(self.lookup_answer_command, found, value)
        return None

    def _send_answer(self, answer: Datagram) -> None:
        faults = self.faults
        if faults.drop_answers > 0:
            faults.drop_answers -= 1
            return
        frames = (answer.encode(),) * (2 if faults.duplicate_answers else 1)
        if faults.answer_delay <= 0:
            self.send(frames)
            return

        def deliver() -> None:
            self._delayed.discard(handle)
            self.send(frames)

        handle = asyncio.get_running_loop().call_later(faults.answer_delay, deliver)
        self._delayed.add(handle)
