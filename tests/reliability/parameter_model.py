"""A model of the VBus, its controllers and the engine's callers, for the parameterization tests.

Written from the protocol description (docs: reference §2-§6), not from the engine's code: a
controller is the bus master; it offers the bus (0x0500 to 0x0000), hands it over to a request
that comes within 0.4 s, answers in order (0x0100, 0x1101 for look-ups, 0x4300 to refuse) while
the bus is handed over, and takes it back on 0x0600, after 10 s without a request, or when it
restarts. :class:`Model` also watches the wire and the callers and writes down every violation
of the engine's promises (the test asserts there is none); see ``test_model_parameters.py``.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from aiovbus.errors import VBusConnectionError
from aiovbus.parameters import (
    BusNotOfferedError,
    ChangesetChangedError,
    MemoryIndexCache,
    NoAnswerError,
    NotSentError,
    ParameterError,
    SessionAbortedError,
    Timing,
    UnknownValueError,
    ValueRejectedError,
    ValueResult,
)
from aiovbus.protocol import Datagram, Frame, Packet
from aiovbus.session import SessionState

if TYPE_CHECKING:
    from collections.abc import Callable

    from .virtual_time import VirtualTimeLoop

# Datagram commands (reference §4), written out: the model does not borrow the engine's view.
ANSWER: Final = 0x0100
SET: Final = 0x0200
GET: Final = 0x0300
OFFER: Final = 0x0500
RELEASE: Final = 0x0600
LOOKUP: Final = 0x1100
LOOKUP_ANSWER: Final = 0x1101
NACK: Final = 0x4300

US: Final = 0x0020
MX: Final = 0x7E11
SECOND: Final = 0x1001  # a second master on the same bus (a DeltaSol SLT's address)
STRANGER: Final = 0x6651  # a device that is not a controller we talk to
WINDOW: Final = 0.4  # a controller hands the bus over to a request this soon after its offer
FALLBACK: Final = 10.0  # ... and takes it back after this long without a request

#: The reference's procedure with short waits; the offer wait outlasts the controller's fallback.
TIMING: Final = Timing(
    offer=12.0, request=0.5, increment=0.5, tries=3, release=1.5, release_tries=2, deadline=20.0
)
RELEASE_WAIT: Final = TIMING.release * TIMING.release_tries
ANSWER_DELAY: Final = 0.04  # so that steps fall inside bus sessions
#: Answer delays of scripted faults: within the first try, in the second, after every try.
DELAYS: Final = {"slow": 0.3, "late": 0.7, "later": 3.5}
#: What a controller may do with the next request it acts on (one fault per request).
FAULTS: Final = (
    "ok",
    "slow",
    "late",
    "later",
    "lost",  # the request never reaches the controller
    "mute",  # the controller acts, its answer is lost
    "dup",
    "nack",
    "update",  # the next look-up finds a new value list: the changeset changes before it
    "restart",  # the controller acts, then restarts into new firmware, offering the bus soon
    "cut",  # the controller acts, then the connection drops for 0.3 s
    "hang",  # the controller acts on nothing for 4 s
    "near_source",  # before the answer, a near miss: the answer from another device ...
    "near_destination",  # ... to another device
    "near_command",  # ... with another command
    "near_key",  # ... for another index (another hash for a look-up)
    "near_nack",  # ... a refusal of another index
)

#: Values with a value-ID hash; under firmware ``shift`` their index is ``base + offset + shift``.
HASHES: Final = {
    763685401: 0,  # Relais_Regler_R1_Handbetrieb
    2095313818: 1,  # Relais_Regler_R2_Handbetrieb
    364696909: 2,  # Solar_Sp1_Tmax
}
FIRMWARES: Final = 4
UNKNOWN_HASH: Final = 1222011281  # Schema: not in these controllers' value lists
FIXED: Final = {7: 17, 8: 18}  # hand-assigned indices that never move, and their values
INVALID_INDEX: Final = 4000

type Key = tuple[str, int]  # ("hash", id_hash) or ("index", index): a value, wherever it is


def signed(value: int) -> int:
    """A 32-bit value as a datagram's signed parameter."""
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


@dataclass
class Caller:
    """One call of the engine, and how it ended."""

    number: int
    action: str  # get, set, lookup, changeset
    controller: int
    index: int | None
    id_hash: int | None
    value: int | None  # of a write: unique, so the wire shows whose value a write carries
    submitted: float
    task: asyncio.Task[ValueResult]
    cancelled: bool = False  # by the test
    ended: float | None = None
    checked: bool = False

    @property
    def target(self) -> Key:
        if self.id_hash is not None:
            return ("hash", self.id_hash)
        return ("index", self.index or 0)

    def waits_at(self, moment: float) -> bool:
        return self.submitted <= moment and (self.ended is None or self.ended >= moment)

    def __repr__(self) -> str:
        where = f"hash {self.id_hash}" if self.id_hash is not None else f"index {self.index}"
        value = "" if self.value is None else f" {self.value}"
        return f"#{self.number} {self.action}{value} {where} at 0x{self.controller:04X}"


@dataclass
class BusSession:
    """A bus session as the wire shows it: from the changeset read after an offer to 0x0600.

    It ends early when the controller offers the bus after it answered in it (``taken_back``: it
    restarted, or its fallback ran out). An offer before any answer means our first request
    never reached it: the session goes on, with that request sent again in the new window.
    """

    controller: int
    start: float
    end: float | None = None
    answered: bool = False
    taken_back: bool = False
    verified: bool = False

    def overlaps(self, start: float, end: float) -> bool:
        return self.start <= end and (self.end is None or self.end >= start)


class ModelController:
    """A controller: the bus master, with a value list that a firmware update rearranges."""

    def __init__(
        self, model: Model, address: int, base: int, changeset: int, lookup_answer: int
    ) -> None:
        self.model = model
        self.address = address
        self.base = base
        self.base_changeset = changeset
        self.lookup_answer = lookup_answer  # 0x0100 is the ambiguous form of reference §6
        self.shift = 0
        self.values: dict[Key, int] = {("hash", h): n for n, h in enumerate(HASHES, 1)}
        self.values.update({("index", index): value for index, value in FIXED.items()})
        self.history = {key: [(0.0, value)] for key, value in self.values.items()}
        self.changesets: list[tuple[float, int]] = [(0.0, changeset)]
        self.held = False
        self.last_contact = -math.inf
        self.offered = -math.inf
        self.period: float | None = None  # offers the bus this often while it is master
        self.offer_timer: asyncio.Handle | None = None
        self.faults: deque[str] = deque()
        self.write_faults: deque[str] = deque()  # for the next writes only (before ``faults``)
        self.update_pending = False  # the next look-up finds a new value list
        self.quiet_until = -math.inf  # it hangs: acts on nothing until then
        self.carried_out: set[tuple[int, int]] = set()  # writes since the bus was handed over
        self.refused_writes: set[tuple[int, int]] = set()  # ... and those it refused
        self.output: deque[tuple[float, Frame]] = deque()
        self.output_timer: asyncio.TimerHandle | None = None
        self.applied: list[tuple[float, int, int]] = []  # writes: (time, index, value)
        self.refused: list[tuple[float, int]] = []  # NACKs sent: (time, index)

    # -- the value list of each firmware ------------------------------------------------------

    @property
    def changeset(self) -> int:
        return self.changeset_of(self.shift)

    def changeset_of(self, shift: int) -> int:
        return (self.base_changeset + shift * 0x101) & 0xFFFFFFFF

    def shift_of(self, changeset: int) -> int | None:
        """The firmware a changeset belongs to, if the controller ever ran it."""
        shifts = [s for s in range(FIRMWARES) if self.changeset_of(s) == changeset]
        return shifts[0] if shifts and changeset in dict(self.changesets).values() else None

    def index_of(self, id_hash: int, shift: int | None = None) -> int | None:
        offset = HASHES.get(id_hash)
        if offset is None:
            return None
        return self.base + offset + (self.shift if shift is None else shift)

    def key_at(self, index: int, shift: int | None = None) -> Key | None:
        """The value at ``index`` under firmware ``shift`` (by default the running one)."""
        if index in FIXED:
            return ("index", index)
        keys = [("hash", h) for h in HASHES if self.index_of(h, shift) == index]
        return keys[0] if keys else None

    def values_during(self, key: Key, start: float, end: float) -> set[int]:
        """The values ``key`` had at some moment from ``start`` to ``end``."""
        history = self.history[key]
        held = {value for when, value in history if start < when <= end}
        return held | {next(value for when, value in reversed(history) if when <= start)}

    def changesets_during(self, start: float, end: float) -> set[int]:
        held = {changeset for when, changeset in self.changesets if start < when <= end}
        return held | {next(c for when, c in reversed(self.changesets) if when <= start)}

    def held_now(self) -> bool:
        if self.held and self.model.now - self.last_contact > FALLBACK:
            self.held = False  # the fallback: the controller took the bus back
        return self.held

    # -- what the controller puts on the bus, in order -----------------------------------------

    def emit(self, frame: Frame, delay: float = ANSWER_DELAY) -> None:
        when = self.model.now + delay
        if self.output:
            when = max(when, self.output[-1][0])
        self.output.append((when, frame))
        if self.output_timer is None:
            self.output_timer = self.model.loop.call_at(when, self._drain)

    def _drain(self) -> None:
        self.output_timer = None
        while self.output and self.output[0][0] <= self.model.now:
            _, frame = self.output.popleft()
            if isinstance(frame, Datagram) and frame.command == OFFER:
                if self.held_now():
                    continue  # handed over meanwhile
                self.offered = self.model.now
            self.model.bus.deliver(frame)
        if self.output:
            self.output_timer = self.model.loop.call_at(self.output[0][0], self._drain)

    def offer(self) -> None:
        if not self.held_now():
            self.emit(Datagram(0x0000, self.address, OFFER), 0.0)

    def live_packet(self) -> None:
        if not self.held_now():
            self.emit(Packet(0x0010, self.address, 0x0100, bytes(8)), 0.0)

    def offer_every(self, period: float | None) -> None:
        """Offer the bus at regular intervals while master (``None``: only when told to)."""
        self.period = period
        if self.offer_timer is not None:
            self.offer_timer.cancel()
        self.offer_timer = None if period is None else self.model.loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.offer()
        assert self.period is not None
        self.offer_timer = self.model.loop.call_later(self.period, self._tick)

    def reboot(self, shift: int) -> None:
        """Restart, into firmware ``shift`` (an update when it differs)."""
        self.held = False
        self.offered = -math.inf
        self.update_pending = False
        self.output.clear()
        if self.output_timer is not None:
            self.output_timer.cancel()
            self.output_timer = None
        self._run_firmware(shift)

    def _run_firmware(self, shift: int) -> None:
        if shift != self.shift:
            self.shift = shift
            self.changesets.append((self.model.now, self.changeset))

    # -- requests -------------------------------------------------------------------------------

    def receive(self, request: Datagram) -> None:
        """A datagram addressed to the controller reached it."""
        if request.source != US:
            return
        if request.command == RELEASE:
            self._release()
            return
        fault = self._accept(request)
        if fault is None:
            return
        answer = self._refusal(request.param16) if fault == "nack" else self._act(request)
        if fault == "restart":
            self.reboot((self.shift + 1) % FIRMWARES)
            self.model.loop.call_later(0.2, self.offer)
        elif fault == "cut":
            bus, loop = self.model.bus, self.model.loop
            loop.call_soon(bus.change_state, SessionState.DISCONNECTED)
            loop.call_later(0.3, bus.change_state, SessionState.CONNECTED)
        if answer is None or fault in ("mute", "restart"):
            return
        near = self._near_miss(fault, request, answer)
        if near is not None:
            self.model.bus.deliver(near)  # another device is quicker than the controller
        self.emit(answer, DELAYS.get(fault, ANSWER_DELAY))
        if fault == "dup":
            self.emit(answer)

    def _accept(self, request: Datagram) -> str | None:
        """Whether the controller acts on ``request`` (its fault), or ignores it (``None``)."""
        if not self.held_now() and self.model.now - self.offered > WINDOW:
            return None  # the bus is not ours
        if self.model.now < self.quiet_until:
            return None
        if request.command == SET and self.write_faults:
            fault = self.write_faults.popleft()
        else:
            fault = self.faults.popleft() if self.faults else "ok"
        self.model.faults_used[f"{fault} {request.command:04X}"] += 1
        if fault == "hang":
            self.quiet_until = self.model.now + 4.0
        if fault in ("lost", "hang"):
            return None
        if not self.held:
            self.held = True  # handed over
            self.offered = -math.inf
            self.carried_out.clear()
            self.refused_writes.clear()
        self.last_contact = self.model.now
        self.update_pending |= fault == "update"
        if self.update_pending and request.command == LOOKUP:
            self.update_pending = False
            self._run_firmware((self.shift + 1) % FIRMWARES)
        key = (request.param16, request.param32)
        if fault == "nack" and key in self.carried_out:
            return "ok"  # it does not refuse a write it has just carried out
        if request.command == SET and (fault == "nack" or key in self.refused_writes):
            # A refusal is for the index or the access, not by chance: a retry of a write it
            # refused is refused again (a late refusal stands for the retry's answer too).
            self.refused_writes.add(key)
            return "nack"
        return fault

    def _release(self) -> None:
        if not self.held_now():
            return
        fault = self.faults.popleft() if self.faults else "ok"
        if fault == "lost":
            return  # still ours, until the fallback
        self.held = False
        if fault != "mute":  # the next packet confirms it
            self.emit(Packet(0x0010, self.address, 0x0100, bytes(8)), DELAYS.get(fault, 0.05))

    def _refusal(self, index: int) -> Datagram:
        self.refused.append((self.model.now, index))
        return Datagram(US, self.address, NACK, index)

    def _act(self, request: Datagram) -> Datagram | None:
        command, index = request.command, request.param16
        if command == GET and index == 0:
            return Datagram(US, self.address, ANSWER, 0, signed(self.changeset))
        if command == LOOKUP:
            self.model.check_lookup(self, request)
            found = self.index_of(request.param32 & 0xFFFFFFFF)
            if found is None:
                return None  # an unknown hash gets no answer
            return Datagram(US, self.address, self.lookup_answer, found, request.param32)
        if command not in (GET, SET):
            return None
        key = self.key_at(index)
        self.model.check_access(self, request, key)
        if key is None:
            return self._refusal(index)
        if command == SET:
            self.carried_out.add((index, request.param32))
            self.values[key] = request.param32
            self.history[key].append((self.model.now, request.param32))
            self.applied.append((self.model.now, index, request.param32))
        return Datagram(US, self.address, ANSWER, index, self.values[key])

    def _near_miss(self, fault: str, request: Datagram, answer: Datagram) -> Datagram | None:
        """``answer`` with one matched field wrong, and wrong data."""
        if request.command == LOOKUP:  # matched by the hash; the data is the index
            wrong = replace(answer, param16=(answer.param16 + 1) & 0xFFFF)
            other_key = replace(wrong, param32=signed(answer.param32 ^ 0x5A5A))
        else:  # matched by the index; the data is the value
            wrong = replace(answer, param32=signed(answer.param32 ^ 0x5A5A))
            other_key = replace(wrong, param16=(answer.param16 + 1) & 0xFFFF)
        near = {
            "near_source": replace(wrong, source=STRANGER),
            "near_destination": replace(wrong, destination=0x0015),
            "near_command": replace(wrong, command=answer.command ^ 0x0001),
            "near_key": other_key,
            "near_nack": Datagram(US, self.address, NACK, (answer.param16 + 1) & 0xFFFF),
        }
        return near.get(fault)


class ModelBus:
    """The connection: the engine's ``Bus``, with the controllers on the other end."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.listeners: list[Callable[[Frame], None]] = []
        self.state_listeners: list[Callable[[SessionState, BaseException | None], None]] = []
        self.connected = True
        self.breaks_in: float | None = None  # the connection breaks at the next send, for so long
        self.bug = False  # the next send raises an error that is not a connection error

    def subscribe(self, listener: Callable[[Frame], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def add_state_listener(
        self, listener: Callable[[SessionState, BaseException | None], None]
    ) -> Callable[[], None]:
        self.state_listeners.append(listener)
        return lambda: self.state_listeners.remove(listener)

    async def send(self, frame: Frame) -> None:
        held = self.model.holding  # the session the engine sends in, as far as it can know
        await asyncio.sleep(0)  # on the wire: an offer may come meanwhile
        if self.breaks_in is not None:  # the session reports it soon, and reconnects later
            self.connected = False
            self.model.loop.call_soon(self.change_state, SessionState.DISCONNECTED)
            self.model.loop.call_later(self.breaks_in, self.change_state, SessionState.CONNECTED)
            self.breaks_in = None
        if not self.connected:
            self.model.on_send_failed(frame)
            msg = "the connection is down (model)"
            raise VBusConnectionError(msg)
        if self.bug:
            self.bug = False
            self.model.on_send_failed(frame)
            raise self.model.bug("a bug in the transport (model)", RuntimeError)
        self.model.on_send(frame, held)
        controller = self.model.controllers.get(frame.destination)
        if controller is not None and isinstance(frame, Datagram):
            controller.receive(frame)

    def deliver(self, frame: Frame) -> None:
        if self.connected:
            self.model.on_deliver(frame)
            for listener in list(self.listeners):
                listener(frame)

    def change_state(self, state: SessionState) -> None:
        self.connected = state == SessionState.CONNECTED
        if not self.connected:
            self.model.disruptions.append(self.model.now)
        reason = None if self.connected else ConnectionResetError("model")
        for listener in list(self.state_listeners):
            listener(state, reason)


class FaultyIndexCache(MemoryIndexCache):
    """An index cache whose storage fails when told: ``failing`` holds "get" and "put"."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model
        self.failing: set[str] = set()  # each fails at its next call

    def get(self, controller: int, changeset: int, id_hash: int) -> int | None:
        self._fail("get")
        return super().get(controller, changeset, id_hash)

    def put(self, controller: int, changeset: int, id_hash: int, index: int) -> None:
        self._fail("put")
        super().put(controller, changeset, id_hash, index)

    def _fail(self, method: str) -> None:
        if method in self.failing:
            self.failing.discard(method)
            msg = f"the index cache's storage failed in {method} (model)"
            raise self.model.bug(msg, OSError)


#: Errors saying the request (the write) was not sent.
NOT_SENT: Final = (BusNotOfferedError, NotSentError, ChangesetChangedError, UnknownValueError)
#: Every error a caller may get.
TYPED: Final = (*NOT_SENT, ValueRejectedError, NoAnswerError, SessionAbortedError)


class Model:
    """The bus, the controllers, the callers, and what the engine did on the wire."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop
        self.bus = ModelBus(self)
        self.controllers = {
            MX: ModelController(self, MX, 100, 0x2734DABC, ANSWER),
            # Its changesets are negative as signed datagram parameters.
            SECOND: ModelController(self, SECOND, 300, 0x91220000, LOOKUP_ANSWER),
        }
        self.callers: list[Caller] = []
        self.by_value: dict[int, Caller] = {}
        self.violations: list[str] = []
        self.sessions: list[BusSession] = []
        self.holding: BusSession | None = None
        self.releasing: tuple[int, float] | None = None  # waiting for the confirmation
        self.last_offer: dict[int, float] = {}
        #: Offers the engine must take, unless every caller then waiting ended that moment.
        self.usable_offers: list[tuple[float, int, list[Caller]]] = []
        self.disruptions: list[float] = []  # connection losses and failed sends
        self.sent: list[tuple[float, Frame]] = []
        self.faults_used: Counter[str] = Counter()  # "<fault> <command>": what a run exercised
        #: When an error other than a connection error came from below the engine (its bus or
        #: its index cache): the engine's own "Unexpected error" is then a true outcome.
        self.bugs: list[float] = []

    @property
    def now(self) -> float:
        return self.loop.time()

    def bug(self, text: str, kind: type[Exception]) -> Exception:
        """An error that is not a connection error, raised below the engine now (noted)."""
        self.bugs.append(self.now)
        self.faults_used[f"raised {kind.__name__}"] += 1
        return kind(text)

    def violation(self, text: str) -> None:
        self.violations.append(f"t={self.now:.3f}: {text}")

    def sessions_of(self, controller: int, start: float, end: float) -> list[BusSession]:
        return [s for s in self.sessions if s.controller == controller and s.overlaps(start, end)]

    # -- the engine's side of the wire -----------------------------------------------------------

    def on_send(self, frame: Frame, held: BusSession | None = None) -> None:
        """A frame went out on the bus; ``held``: the session held when it was sent.

        A request sent in a session that the controller took back while the request was on the
        wire (its offer crossed the request) belongs to that session: no master can know of an
        offer that has not arrived. The engine learns of it next, and the next session starts
        with the changeset read.
        """
        self.sent.append((self.now, frame))
        controller = frame.destination
        if not isinstance(frame, Datagram) or frame.source != US:
            self.violation(f"sent a frame that is not our datagram: {frame}")
        elif controller not in self.controllers:
            self.violation(f"sent to an address nobody asked for: {frame}")
        elif frame.command == RELEASE:
            if self.holding is not None and self.holding.controller == controller:
                self.holding.end = self.now
                self.holding = None
            self.releasing = (controller, self.now)  # it waits for the confirmation
        elif frame.command not in (GET, SET, LOOKUP):
            self.violation(f"sent an unexpected command: {frame}")
        else:
            self._on_request(frame, held)

    def _on_request(self, frame: Datagram, held: BusSession | None) -> None:
        controller = frame.destination
        crossed = held is not None and held.taken_back and held.end == self.now
        if self.holding is None:
            if not crossed:
                self._open_session(frame)
        elif self.holding.controller != controller:
            holder = self.holding.controller
            self.violation(f"talked to 0x{controller:04X} while holding 0x{holder:04X}")
        if frame.command == LOOKUP and frame.param16 != 0:
            self.violation(f"a look-up with index {frame.param16}: {frame}")
        if frame.command == SET:
            self._check_write_sent(frame)

    def _open_session(self, frame: Datagram) -> None:
        controller = frame.destination
        offer = self.last_offer.get(controller)
        if offer is None or self.now - offer > WINDOW:
            self.violation(f"talked to 0x{controller:04X} without a bus offer: {frame}")
        if (frame.command, frame.param16) != (GET, 0):
            self.violation(f"a bus session did not start with the changeset read: {frame}")
        if self.releasing is not None and self.releasing[0] != controller:
            self.releasing = None  # the engine no longer waits for that confirmation
        self.holding = BusSession(controller, self.now)
        self.sessions.append(self.holding)

    def _check_write_sent(self, frame: Datagram) -> None:
        """The value is a caller's, first sent while one of its callers waited."""
        caller = self.by_value.get(frame.param32)
        if frame.param16 == 0:
            self.violation(f"wrote index 0 (the changeset): {frame}")
        if caller is None or caller.controller != frame.destination or caller.action != "set":
            self.violation(f"wrote a value no caller asked for: {frame}")
            return
        # Earlier callers of the same value may wait for this value, merged into theirs.
        group = [
            other
            for other in self.callers
            if (other.action, other.controller, other.target)
            == (caller.action, caller.controller, caller.target)
            and other.submitted <= caller.submitted
        ]
        if any(other.ended is None or other.ended >= self.now for other in group):
            return
        last = max(other.ended or 0.0 for other in group)
        if not any(when <= last and sent == frame for when, sent in self.sent[:-1]):
            self.violation(f"sent {caller!r} after every caller of it gave up: {frame}")

    def on_send_failed(self, frame: Frame) -> None:
        """A frame did not go out: only giving the bus back matters (the engine gave up)."""
        self.disruptions.append(self.now)
        if frame.command == RELEASE:
            if self.holding is not None and self.holding.controller == frame.destination:
                self.holding.end = self.now
                self.holding = None
            if self.releasing is not None and self.releasing[0] == frame.destination:
                self.releasing = None  # nothing to wait for on a dead connection

    def on_deliver(self, frame: Frame) -> None:
        source = frame.source
        is_offer = isinstance(frame, Datagram) and frame.command == OFFER
        if is_offer and source in self.controllers:
            self.last_offer[source] = self.now
            if self.holding is not None and self.holding.controller == source:
                if self.holding.answered:
                    self.holding.end = self.now  # the controller took the bus back
                    self.holding.taken_back = True
                    self.holding = None
            elif self.usable(source):
                waiting = [c for c in self.callers if c.controller == source and c.ended is None]
                self.usable_offers.append((self.now, source, waiting))
        if (
            self.holding is not None
            and self.holding.controller == source
            and frame.destination == US
            and not is_offer
        ):
            self.holding.answered = True
        if (
            self.releasing is not None
            and self.releasing[0] == source
            and (is_offer or isinstance(frame, Packet))
        ):
            self.releasing = None  # confirmed

    def usable(self, controller: int) -> bool:
        """Whether an offer of ``controller`` now must open a bus session (if callers wait)."""
        bus = self.bus
        if not bus.connected or bus.breaks_in is not None or bus.bug or self.holding is not None:
            return False
        if self.releasing is None or self.releasing[0] == controller:
            return True
        since = self.releasing[1]
        if self.now - since > RELEASE_WAIT or any(when > since for when in self.disruptions):
            self.releasing = None  # the engine gave up waiting for the confirmation
            return True
        return False  # still releasing another controller

    # -- the controller's side: what it acts on ----------------------------------------------

    def check_lookup(self, controller: ModelController, request: Datagram) -> None:
        id_hash = request.param32 & 0xFFFFFFFF
        if not any(
            c.controller == controller.address and c.id_hash == id_hash for c in self.callers
        ):
            self.violation(f"looked up a hash nobody asked for: {request}")

    def check_access(self, controller: ModelController, request: Datagram, key: Key | None) -> None:
        """A read or write the controller acts on names, now, the value a caller named."""
        index = request.param16
        action = "set" if request.command == SET else "get"
        callers = [
            c
            for c in self.callers
            if (c.controller, c.action) == (controller.address, action)
            and (c.index == index if c.id_hash is None else key == c.target)
        ]
        if action == "set" and self.by_value.get(request.param32) not in callers:
            self.violation(
                f"wrote {request.param32} to index {index}, which holds {key} under the "
                f"current changeset {controller.changeset:08X}"
            )
        elif not callers:
            self.violation(
                f"read index {index}, which holds {key} under the current changeset "
                f"{controller.changeset:08X}: no caller asked for it"
            )

    # -- callers ---------------------------------------------------------------------------------

    def check_outcome(self, caller: Caller) -> None:
        """A caller ended: in time, with a typed error or a true result."""
        caller.checked = True
        assert caller.ended is not None
        if caller.ended > caller.submitted + TIMING.deadline + 1e-9:
            self.violation(f"{caller!r} ended after its deadline, at {caller.ended:.3f}")
        task = caller.task
        if task.cancelled():
            if not caller.cancelled:
                self.violation(f"{caller!r} was cancelled by someone else")
        elif (error := task.exception()) is None:
            self._check_result(caller, task.result())
        else:
            self._check_error(caller, error)

    def _check_error(self, caller: Caller, error: BaseException) -> None:
        start, end = caller.submitted, caller.ended or self.now
        if type(error) is ParameterError and any(start <= when <= end for when in self.bugs):
            return  # the engine's "Unexpected error": something below it raised meanwhile
        if not isinstance(error, TYPED):
            self.violation(f"{caller!r} got {error!r}, not a specific typed error")
            return
        controller = self.controllers[caller.controller]
        wrote = [
            frame
            for when, frame in self.sent
            if start <= when <= end
            and isinstance(frame, Datagram)
            and (frame.destination, frame.command) == (caller.controller, SET)
            and (merged := self.by_value.get(frame.param32)) is not None
            and merged.target == caller.target
        ]
        if isinstance(error, NOT_SENT) and any(f.param32 == caller.value for f in wrote):
            self.violation(f"{caller!r} was told {error!r}, but its value was sent")
        in_progress = isinstance(error, NoAnswerError) or type(error) is SessionAbortedError
        if in_progress and not self.sessions_of(caller.controller, start, end):
            self.violation(f"{caller!r} was told {error!r}, but no bus session took it")
        if (
            type(error) is SessionAbortedError
            and caller.action == "set"
            and not any(self.by_value[f.param32].submitted >= start for f in wrote)
        ):
            self.violation(f"{caller!r} was told {error!r}, but its write was not sent")
        if isinstance(error, ValueRejectedError):
            if any(value == caller.value for _, _, value in controller.applied):
                self.violation(f"{caller!r} was told {error!r}, but its value was written")
            if caller.id_hash is not None:
                indices = {
                    controller.index_of(caller.id_hash, controller.shift_of(c))
                    for c in controller.changesets_during(start, end)
                }
            else:
                indices = {caller.index}
            if not any(start <= when <= end and i in indices for when, i in controller.refused):
                self.violation(f"{caller!r} was told {error!r}, but the controller never refused")

    def _check_result(self, caller: Caller, result: ValueResult) -> None:
        controller = self.controllers[caller.controller]
        start, end = caller.submitted, caller.ended or self.now
        shift = controller.shift_of(result.changeset)
        if caller.id_hash is None:
            index = caller.index
        else:
            index = controller.index_of(caller.id_hash, shift)
        if result.changeset not in controller.changesets_during(start, end):
            self.violation(f"{caller!r} got {result} with a changeset it did not have then")
        elif caller.action == "changeset":
            if result != ValueResult(0, result.changeset, result.changeset):
                self.violation(f"{caller!r} got {result}")
        elif result.index != index:
            self.violation(f"{caller!r} got {result}; the index is {index}")
        elif caller.action == "lookup":
            if result.value != caller.id_hash:
                self.violation(f"{caller!r} got {result}")
        elif caller.action == "get":
            keys = {  # by index: whatever was there meanwhile
                controller.key_at(result.index, controller.shift_of(c))
                for c in controller.changesets_during(start, end)
            }
            held = set[int]().union(
                *(controller.values_during(key, start, end) for key in keys if key is not None)
            )
            if result.value not in held:
                self.violation(f"{caller!r} got {result}: the controller never held that value")
        else:
            self._check_written(caller, result)

    def _check_written(self, caller: Caller, result: ValueResult) -> None:
        """A write's result: its value or a later merged caller's, as the controller applied it."""
        controller = self.controllers[caller.controller]
        start, end = caller.submitted, caller.ended or self.now
        merged = self.by_value.get(result.value)
        if (
            merged is None
            or (merged.controller, merged.target) != (caller.controller, caller.target)
            or merged.submitted < caller.submitted
        ):
            self.violation(f"{caller!r} got {result}: not its value, nor a later caller's")
        elif not any(
            start <= when <= end and (i, value) == (result.index, result.value)
            for when, i, value in controller.applied
        ):
            self.violation(f"{caller!r} got {result}, but the controller never applied it")

    def check_sessions(self) -> None:
        """Usable offers open a session; after one that ran undisturbed, no caller waits on."""
        for offered, controller, callers in self.usable_offers:
            if not any(c.ended is None or c.ended > offered for c in callers):
                continue  # they got their outcome at that moment (the engine was busy)
            if not any(
                offered <= s.start <= offered + WINDOW
                if s.controller == controller
                else s.overlaps(offered, offered)  # another master's offer came first
                for s in self.sessions
            ):
                self.violation(
                    f"the engine let an offer of 0x{controller:04X} at {offered:.3f} pass with "
                    f"callers waiting: {callers}"
                )
        self.usable_offers.clear()
        for session in self.sessions:
            if session.verified or session.end is None or self.now < session.end + RELEASE_WAIT:
                continue
            session.verified = True
            if session.taken_back or any(  # disturbed, or while it waited for the confirmation
                session.start <= when <= session.end + RELEASE_WAIT for when in self.disruptions
            ):
                continue
            left = [
                caller
                for caller in self.callers
                if caller.controller == session.controller
                and caller.submitted < session.start
                and caller.waits_at(session.start)
                and (caller.ended is None or caller.ended > session.end + RELEASE_WAIT)
            ]
            if left:
                self.violation(
                    f"the bus session with 0x{session.controller:04X} from {session.start:.3f} "
                    f"to {session.end:.3f} left {left} waiting"
                )

    def check_cache(self, cache: MemoryIndexCache) -> None:
        for key, index in cache.entries.items():
            address, changeset, id_hash = (int(part, 16) for part in key.split(":"))
            controller = self.controllers.get(address)
            shift = None if controller is None else controller.shift_of(changeset)
            if controller is None or shift is None:
                self.violation(f"the cache holds {key} for a changeset that never existed")
            elif (truth := controller.index_of(id_hash, shift)) != index:
                self.violation(f"the cache holds {key} = {index}; that changeset has {truth}")
