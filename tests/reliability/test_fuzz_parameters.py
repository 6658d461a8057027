"""Fuzzing datagram answers to the parameterization engine: strict response matching (§1, §4).

A scripted controller answers every request of a hash-addressed write correctly, but before
each answer the bus also carries noise: near misses (the right answer with one matched field
changed: source, destination, command, index or hash), random datagrams, another master's bus
offers, and the previous request's answer once more (a late duplicate). Whatever the noise, the
write goes to the index the controller's own look-up answer gave, exactly once, and the result
is the controller's acknowledgement. (An offer from the controller itself is no noise: it is
master again, and the engine starts over; tests/reliability/test_model_parameters.py.)

What strict matching cannot do on an unauthenticated bus: a device that forges the exact
answer (right source, destination, command, index and hash) is believed, and so is a duplicate
delayed by more than one request (the engine resynchronises once after look-ups and writes);
see SECURITY.md.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from hypothesis import given
from hypothesis import strategies as st

from aiovbus.parameters import (
    ParameterEngine,
    Timing,
    ValueResult,
)
from aiovbus.protocol import Datagram, Frame, Packet

from .conftest import fuzz
from .strategies import I32, WIRE16

CONTROLLER = 0x7E11
US = 0x0020
INDEX = 1977
ID_HASH = 763685401  # Relais_Regler_R1_Handbetrieb
CHANGESET = 0x2734DABC
OTHER_MASTER = 0x1001
TIMING = Timing(offer=2.0, request=2.0, increment=0.1, release=1.0, deadline=10.0)
#: Requests of one hash-addressed write: changeset, look-up, resync, write, resync, release.
REQUESTS = 6

near_miss = st.tuples(
    st.sampled_from(["source", "destination", "command", "param16", "param32"]),
    WIRE16,
    I32.filter(lambda number: number != 0),
)
noise_item = st.one_of(
    st.tuples(st.just("near"), near_miss),
    st.tuples(st.just("random"), st.builds(Datagram, WIRE16, WIRE16, WIRE16, WIRE16, I32)),
    st.tuples(st.just("offer"), st.none()),
    st.tuples(st.just("replay"), st.none()),
)
noise = st.lists(st.lists(noise_item, max_size=6), min_size=REQUESTS, max_size=REQUESTS)


def acceptable(request: Datagram, answer: Datagram) -> bool:
    """Whether ``answer`` is indistinguishable from the controller's answer to ``request``."""
    if answer.source != CONTROLLER or answer.destination != US:
        return False
    if request.command == 0x1100:
        return answer.command in (0x0100, 0x1101) and answer.param32 == request.param32
    nack = answer.command & 0xFF80 == 0x4300
    return (answer.command == 0x0100 or nack) and answer.param16 == request.param16


@dataclass
class SpoofedBus:
    """A controller that answers correctly, on a bus that carries ``noise`` before each answer."""

    noise: list[list[tuple[str, object]]]
    value: int = 2
    sent: list[Frame] = field(default_factory=list)
    writes: list[tuple[int, int]] = field(default_factory=list)
    _listeners: list = field(default_factory=list)
    _previous: Datagram | None = None

    def subscribe(self, listener):
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add_state_listener(self, _listener):
        return lambda: None

    def deliver(self, frame: Frame) -> None:
        for listener in list(self._listeners):
            listener(frame)

    def answer(self, request: Datagram) -> Datagram | None:
        reply = Datagram(US, CONTROLLER, 0x0100, request.param16)
        if request.command == 0x0300 and request.param16 == 0:
            return replace(reply, param32=CHANGESET)
        if request.command == 0x1100 and request.param32 == ID_HASH:
            return Datagram(US, CONTROLLER, 0x1101, INDEX, ID_HASH)
        if request.command == 0x0200 and request.param16 == INDEX:
            self.writes.append((INDEX, request.param32))
            self.value = request.param32
            return replace(reply, param32=self.value)
        return None

    async def send(self, frame: Frame) -> None:
        assert isinstance(frame, Datagram)
        self.sent.append(frame)
        if frame.command == 0x0600:
            self.deliver(Packet(0x0010, CONTROLLER, 0x0100, bytes(4)))
            return
        genuine = self.answer(frame)
        assert genuine is not None, frame
        items = self.noise[len(self.sent) - 1] if len(self.sent) <= len(self.noise) else []
        for kind, detail in items:
            spoof = self._spoof(kind, detail, genuine)
            if spoof is not None and not acceptable(frame, spoof):
                self.deliver(spoof)
        self.deliver(genuine)
        self._previous = genuine

    def _spoof(self, kind: str, detail: object, genuine: Datagram) -> Datagram | None:
        if kind == "near":
            # One matched field differs, and the data is wrong: believed, it would show.
            name, number, param32 = detail
            if genuine.command == 0x1101:  # a look-up answer: the data is the index
                spoof = replace(genuine, param16=(INDEX + 1 + number) % 0x10000)
            else:
                spoof = replace(genuine, param32=genuine.param32 ^ (param32 | 1))
            return replace(spoof, **{name: param32 if name == "param32" else number})
        if kind == "random":
            return detail
        if kind == "offer":
            return Datagram(0x0000, OTHER_MASTER, 0x0500)
        return self._previous


@fuzz(200)
@given(noise, st.integers(min_value=0, max_value=4))
async def test_noise_never_redirects_or_fakes_a_write(noise_lists, value: int) -> None:
    bus = SpoofedBus(noise_lists)
    engine = ParameterEngine(bus, address=US, timing=TIMING)
    try:
        bus.deliver(Datagram(0x0000, CONTROLLER, 0x0500))  # an offer a moment ago still counts
        async with asyncio.timeout(5):
            result = await engine.set(CONTROLLER, value, id_hash=ID_HASH)
    finally:
        await engine.close()
    assert result == ValueResult(INDEX, value, CHANGESET)
    assert bus.writes == [(INDEX, value)]
    assert [(frame.command, frame.param16) for frame in bus.sent] == [
        (0x0300, 0),
        (0x1100, 0),
        (0x0300, 0),
        (0x0200, INDEX),
        (0x0300, 0),
        (0x0600, 0),
    ]
