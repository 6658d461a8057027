"""Reading and writing controller values: a queued parameterization engine.

The VBus has one master, the controller. To talk to it, a device waits for the controller's
bus offer (datagram 0x0500 to 0x0000), answers within about 0.4 s and then runs its requests
as the controller's temporary master, finally giving the bus back with 0x0600; the controller's
next ordinary packet confirms it is master again.

:class:`ParameterEngine` queues operations per controller and, at each offer, runs **everything
queued at that moment in one bus session**, in the order the reference recommends:

1. read the changeset (value index 0) — the first request, which also takes the bus;
2. look up the indices of values addressed by value-ID hash (unless the index cache knows them);
3. resynchronise (read index 0 again) after any look-up, answered or not, so that a late
   answer to a look-up cannot be taken for the answer to the next request; if the changeset
   differs now, the value list changed (a firmware update) and the look-ups are repeated once
   before anything is written;
4. writes; 5. resynchronise; 6. reads; 7. release and wait for the confirmation packet.

One bus session runs at a time (an offer from another master meanwhile is let pass). Answers
are matched strictly: source = controller, destination = us, the expected command, the same
16-bit parameter and, for look-ups, the same hash. Anything else is discarded. An offer from
the controller during the session means it is master: before it answered anything (our first
request never reached it), the request is sent again in the new window; after that (it
restarted, or took the bus back), the session ends and the next one starts on that offer,
with the changeset read again. The bus is released on every other path, including errors and
cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

from .errors import VBusConnectionError, VBusError, VBusTimeoutError
from .protocol import (
    BROADCAST,
    CMD_ANSWER,
    CMD_GET,
    CMD_LOOKUP,
    CMD_LOOKUP_ANSWER,
    CMD_NACK,
    CMD_OFFER,
    CMD_RELEASE,
    CMD_SET,
    Datagram,
    Frame,
    Packet,
)
from .session import SessionState

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

DEFAULT_ADDRESS: Final = 0x0020

CHANGESET_INDEX: Final = 0
#: An offer seen this many seconds ago can still be answered (the window is about 0.4 s).
OFFER_FRESH: Final = 0.2
#: Bus offers are tracked for at most this many sender addresses. A VBus has one master that
#: offers the bus (one in the recorded DeltaSol MX system); more come from forged or corrupted
#: addresses. A controller that operations wait for is tracked whatever the count.
MAX_OFFERERS: Final = 16
#: Frames waiting for a bus session: only the held controller's answers, packets and offers get
#: in, and the session reads them as they come. A DeltaSol MX sends 7 packets a second besides its
#: answers (recorded system); beyond this the newest are dropped (counted). The marker of a lost
#: connection always gets in.
INBOX_LIMIT: Final = 64
#: Writes sent and not answered, remembered so that their late answers are not taken for the
#: acknowledgement of another value: values per value index, and value indices.
MAX_UNANSWERED_VALUES: Final = 8
MAX_UNANSWERED_INDICES: Final = 64


class EngineLimit(StrEnum):
    """A bound on what the bus feeds the engine (:meth:`ParameterEngine.add_limit_listener`)."""

    OFFERERS = "offerers"  # MAX_OFFERERS
    BUS_SESSION_FRAMES = "bus_session_frames"  # INBOX_LIMIT

    @property
    def limit(self) -> int:
        """The bound."""
        return MAX_OFFERERS if self is EngineLimit.OFFERERS else INBOX_LIMIT


class ParameterError(VBusError):
    """A parameter operation failed."""


class BusNotOfferedError(ParameterError, VBusTimeoutError):
    """The controller did not offer the bus in time (another master, or it does not offer)."""


class NoAnswerError(ParameterError, VBusTimeoutError):
    """The controller did not answer a request (after all retries)."""


class ValueRejectedError(ParameterError):
    """The controller refused the request (NACK): unknown index or not accessible."""


class UnknownValueError(ParameterError):
    """The controller does not know a value with this value-ID hash."""


class ChangesetChangedError(ParameterError):
    """The controller's value list changed again while a session looked up value indices."""


class ValueOutOfRangeError(ParameterError, ValueError):
    """A write was refused before queueing: the value is outside its allowed range."""


class SessionAbortedError(ParameterError, VBusConnectionError):
    """The connection broke while the operation was pending; it was not completed."""


class NotSentError(SessionAbortedError):
    """The connection ended (or the engine closed) before the request was sent: nothing changed."""


class _BusTakenBackError(VBusError):
    """The controller offered the bus during a bus session: it is master again."""


class Action(StrEnum):
    """What an operation does."""

    GET = "get"
    SET = "set"
    LOOKUP = "lookup"
    CHANGESET = "changeset"


@dataclass(frozen=True, slots=True)
class ValueResult:
    """The outcome of an operation: the index, the value now in effect, the changeset."""

    index: int
    value: int
    changeset: int


def _result_future() -> asyncio.Future[ValueResult]:
    """An operation's future; its outcome counts as seen even when every caller gave up."""
    future: asyncio.Future[ValueResult] = asyncio.get_running_loop().create_future()
    future.add_done_callback(_seen)
    return future


def _seen(future: asyncio.Future[ValueResult]) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved: asyncio would log it as never retrieved


@dataclass(eq=False)
class _Operation:
    action: Action
    controller: int
    index: int | None = None
    id_hash: int | None = None
    value: int = 0
    retries_left: int = 1
    started: bool = False  # part of a bus session
    sent: bool = False  # its read or write went out (a session may end before it does)
    waiters: int = 0  # callers waiting for the result (merged writes have several)
    future: asyncio.Future[ValueResult] = field(default_factory=_result_future)

    @property
    def idempotent(self) -> bool:
        return self.action != Action.SET


class IndexCache(Protocol):
    """Where value-ID hash → index mappings are kept (the caller may persist them)."""

    def get(self, controller: int, changeset: int, id_hash: int) -> int | None:
        """The cached index, if known for this changeset."""

    def put(self, controller: int, changeset: int, id_hash: int, index: int) -> None:
        """Remember an index."""


class MemoryIndexCache:
    """An :class:`IndexCache` in memory; :attr:`entries` can be saved and restored."""

    def __init__(self, entries: dict[str, int] | None = None) -> None:
        """Start with ``entries`` (keys ``"<controller>:<changeset>:<hash>"``, hexadecimal)."""
        self.entries: dict[str, int] = dict(entries or {})

    @staticmethod
    def _key(controller: int, changeset: int, id_hash: int) -> str:
        return f"{controller:04X}:{changeset:08X}:{id_hash:08X}"

    def get(self, controller: int, changeset: int, id_hash: int) -> int | None:
        """The cached index, if known for this changeset."""
        return self.entries.get(self._key(controller, changeset, id_hash))

    def put(self, controller: int, changeset: int, id_hash: int, index: int) -> None:
        """Remember an index."""
        self.entries[self._key(controller, changeset, id_hash)] = index


class Bus(Protocol):
    """What the engine needs from a connection (a :class:`~.session.VBusSession` fits)."""

    def subscribe(self, listener: Callable[[Frame], None]) -> Callable[[], None]:
        """Deliver every received frame."""

    def add_state_listener(
        self, listener: Callable[[SessionState, BaseException | None], None]
    ) -> Callable[[], None]:
        """Report connection state changes."""

    async def send(self, frame: Frame) -> None:
        """Send a frame."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Timeouts in seconds (reference defaults)."""

    offer: float = 30.0  # wait this long for a bus offer
    request: float = 0.5  # first try of a request ...
    increment: float = 0.5  # ... and this much longer for each retry
    tries: int = 3
    release: float = 1.5  # wait for the confirmation packet after 0x0600 ...
    release_tries: int = 2  # ... this often
    deadline: float = 120.0  # overall limit per operation, queue time included


class ParameterEngine:
    """One queue of parameter operations per connection."""

    def __init__(
        self,
        bus: Bus,
        *,
        address: int = DEFAULT_ADDRESS,
        timing: Timing | None = None,
        cache: IndexCache | None = None,
    ) -> None:
        """Use ``bus`` with our own VBus ``address`` (0x0020, "Computer", by default)."""
        self.bus = bus
        self.address = address
        self.timing = timing or Timing()
        self.cache: IndexCache = cache or MemoryIndexCache()
        self._queue: list[_Operation] = []
        # Values sent to (controller, index) without an answer yet (none came, or the session
        # ended first): a late answer carrying one of them must not be taken for the
        # acknowledgement of a later write of another value there.
        self._unanswered: dict[tuple[int, int], set[int]] = {}
        self._inbox: asyncio.Queue[Frame] | None = None
        self._offers: dict[int, asyncio.Event] = {}
        self._offer_times: dict[int, float] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._holding: int | None = None
        self._answered = False
        self.bus_sessions = 0
        #: Offers from addresses beyond MAX_OFFERERS, and frames beyond INBOX_LIMIT, ignored.
        self.ignored_offers = 0
        self.dropped_frames = 0
        self._closed = False
        self.last_changeset: dict[int, int] = {}
        self._changeset_listeners: list[Callable[[int, int | None, int], None]] = []
        self._limit_listeners: list[Callable[[EngineLimit], None]] = []
        self._unsubscribe = [
            bus.subscribe(self._handle_frame),
            bus.add_state_listener(self._handle_state),
        ]

    # -- public operations ----------------------------------------------------------------

    async def get(
        self, controller: int, *, index: int | None = None, id_hash: int | None = None
    ) -> ValueResult:
        """Read a value by index or by value-ID hash."""
        return await self._submit(_Operation(Action.GET, controller, index, id_hash))

    async def set(
        self,
        controller: int,
        value: int,
        *,
        index: int | None = None,
        id_hash: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> ValueResult:
        """Write a value; the result carries the value the controller acknowledged.

        ``minimum``/``maximum`` (raw) are checked here as well as by the caller, before anything
        is queued: a value outside them never reaches the bus.
        """
        if not -(2**31) <= value < 2**31 or (
            (minimum is not None and value < minimum) or (maximum is not None and value > maximum)
        ):
            msg = f"{value} is outside the allowed range {minimum}..{maximum}"
            raise ValueOutOfRangeError(msg)
        return await self._submit(_Operation(Action.SET, controller, index, id_hash, value))

    async def lookup(self, controller: int, id_hash: int) -> ValueResult:
        """Find the index of a value-ID hash (``value`` in the result is the hash)."""
        return await self._submit(_Operation(Action.LOOKUP, controller, None, id_hash))

    async def changeset(self, controller: int) -> ValueResult:
        """Read the changeset ID (value index 0)."""
        return await self._submit(_Operation(Action.CHANGESET, controller, CHANGESET_INDEX))

    def add_changeset_listener(
        self, listener: Callable[[int, int | None, int], None]
    ) -> Callable[[], None]:
        """Call ``listener(controller, old, new)`` when a controller's changeset is read anew.

        ``old`` is ``None`` the first time; a different ``new`` means the value list changed (a
        firmware update or a new configuration): values read before may have moved.
        """
        self._changeset_listeners.append(listener)
        return lambda: self._changeset_listeners.remove(listener)

    def add_limit_listener(self, listener: Callable[[EngineLimit], None]) -> Callable[[], None]:
        """Call ``listener(limit)`` the first time the bus makes the engine reach ``limit``.

        The engine logs one warning then and counts what it ignores (:attr:`ignored_offers`,
        :attr:`dropped_frames`); the listener can tell the user, who can look for the device.
        """
        self._limit_listeners.append(listener)
        return lambda: self._limit_listeners.remove(listener)

    def _limit_reached(self, limit: EngineLimit) -> None:
        for listener in list(self._limit_listeners):
            listener(limit)

    async def close(self) -> None:
        """Fail everything pending and stop; the bus is released if held."""
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for worker in list(self._workers.values()):
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._abort(list(self._queue), "The parameter engine was closed", retry=False)

    # -- queueing ---------------------------------------------------------------------------

    async def _submit(self, operation: _Operation) -> ValueResult:
        if self._closed:
            msg = "The parameter engine was closed"
            raise SessionAbortedError(msg)
        if operation.index is None and operation.id_hash is None:
            msg = "an index or a value-ID hash is required"
            raise ValueError(msg)
        queued = self._queued_write(operation)
        if queued is not None:
            # A write to the same value is still waiting for the bus: the last value wins,
            # and every caller gets the controller's acknowledgement of it.
            queued.value = operation.value
            operation = queued
        else:
            self._queue.append(operation)
        operation.waiters += 1
        if operation.controller not in self._workers:
            self._workers[operation.controller] = asyncio.create_task(
                self._work(operation.controller),
                name=f"vbus parameters {operation.controller:04X}",
            )
        try:
            async with asyncio.timeout(self.timing.deadline):
                # Not asyncio.shield: a caller who gives up must neither cancel the request
                # (others may wait for it) nor have its later outcome reported as an error.
                await asyncio.wait((operation.future,))
                return operation.future.result()
        except TimeoutError as err:
            self._leave(operation)
            if operation.started:
                msg = (
                    f"The controller 0x{operation.controller:04X} did not complete the request "
                    f"within {self.timing.deadline:g} s"
                )
                raise NoAnswerError(msg) from err
            msg = (
                f"The request was not sent within {self.timing.deadline:g} s: the controller "
                f"0x{operation.controller:04X} did not offer the bus (is another device talking "
                "to it?)"
            )
            raise BusNotOfferedError(msg) from err
        except asyncio.CancelledError:
            self._leave(operation)
            raise

    def _leave(self, operation: _Operation) -> None:
        """A caller stopped waiting; a request nobody waits for and not yet sent is dropped."""
        operation.waiters -= 1
        if operation.waiters <= 0 and not operation.sent and operation in self._queue:
            self._queue.remove(operation)

    def _queued_write(self, operation: _Operation) -> _Operation | None:
        if operation.action != Action.SET:
            return None
        for queued in self._queue:
            if (
                queued.action == Action.SET
                and not queued.started
                and queued.controller == operation.controller
                and (queued.index, queued.id_hash) == (operation.index, operation.id_hash)
            ):
                return queued
        return None

    def _pending(self, controller: int, *, started: bool = False) -> list[_Operation]:
        """The operations for ``controller`` still waiting (``started``: in a bus session)."""
        return [
            op
            for op in self._queue
            if op.controller == controller and not op.future.done() and (op.started or not started)
        ]

    async def _work(self, controller: int) -> None:
        """Run bus sessions for ``controller`` while operations are queued.

        No exception ends it while operations wait: each one fails those it concerns.
        """
        try:
            while self._pending(controller):
                in_session = False
                try:
                    await self._wait_for_offer(controller)
                    if not self._pending(controller):
                        break  # every caller gave up meanwhile: do not take the bus for nothing
                    if self._holding is not None:
                        continue  # a session with another master runs: one at a time
                    in_session = True
                    await self._bus_session(controller)
                except SessionAbortedError:
                    continue  # what may not be retried has failed already (_handle_state)
                except ParameterError as err:
                    # What was queued after the session began waits for the next offer.
                    in_session = not isinstance(err, BusNotOfferedError)
                    for operation in self._pending(controller, started=in_session):
                        self._fail(operation, err)
                except VBusError as err:  # sending failed: the connection broke under us
                    self._abort(self._pending(controller), f"The connection broke: {err}")
                except Exception as err:  # a bug: fail what it hit, keep working for the rest
                    _LOGGER.exception("Unexpected error in a bus session with 0x%04X", controller)
                    self._fail_unexpected(controller, err, started=in_session)
        finally:
            self._workers.pop(controller, None)

    def _fail_unexpected(self, controller: int, err: Exception, *, started: bool) -> None:
        """Fail what waits for ``controller`` (``started``: in the bus session) with ``err``."""
        for operation in self._pending(controller, started=started):
            self._fail(operation, ParameterError(f"Unexpected error: {err!r}"))

    async def _wait_for_offer(self, controller: int) -> None:
        """Wait for a bus offer; one that arrived a moment ago still counts."""
        event = self._offers.setdefault(controller, asyncio.Event())
        loop = asyncio.get_running_loop()
        if event.is_set() and loop.time() - self._offer_times.get(controller, 0.0) < OFFER_FRESH:
            event.clear()
            return
        event.clear()
        try:
            async with asyncio.timeout(self.timing.offer):
                await event.wait()
        except TimeoutError as err:
            msg = (
                f"The controller 0x{controller:04X} did not offer the bus within "
                f"{self.timing.offer:g} s (is another device talking to it?)"
            )
            raise BusNotOfferedError(msg) from err
        event.clear()

    # -- frames -----------------------------------------------------------------------------

    def _handle_frame(self, frame: Frame) -> None:
        is_offer = _is_offer(frame)
        if is_offer:
            self._track_offer(frame.source)
        if (
            self._inbox is not None
            and frame.source == self._holding
            and (
                is_offer
                or isinstance(frame, Packet)
                or (isinstance(frame, Datagram) and frame.destination == self.address)
            )
        ):
            if self._inbox.qsize() < INBOX_LIMIT:
                self._inbox.put_nowait(frame)
                return
            if not self.dropped_frames:
                _LOGGER.warning(
                    "More than %d frames from 0x%04X waited during a bus session; dropping "
                    "further ones (a faulty or foreign device sending with its address?)",
                    INBOX_LIMIT,
                    frame.source,
                )
                self._limit_reached(EngineLimit.BUS_SESSION_FRAMES)
            self.dropped_frames += 1

    def _track_offer(self, source: int) -> None:
        if source not in self._offers and len(self._offers) >= MAX_OFFERERS:
            if not self.ignored_offers:
                _LOGGER.warning(
                    "Bus offers came from more than %d addresses; ignoring those from new "
                    "ones such as 0x%04X (a faulty or foreign device on the bus?)",
                    MAX_OFFERERS,
                    source,
                )
                self._limit_reached(EngineLimit.OFFERERS)
            self.ignored_offers += 1
            return
        self._offer_times[source] = asyncio.get_running_loop().time()
        self._offers.setdefault(source, asyncio.Event()).set()

    def _handle_state(self, state: SessionState, reason: BaseException | None) -> None:
        if state in (SessionState.DISCONNECTED, SessionState.FAILED, SessionState.STOPPED):
            if self._inbox is not None:
                self._inbox.put_nowait(_ABORT)
            # A passing loss (DISCONNECTED: the session reconnects) keeps what was not sent yet
            # and retries reads once; the end of the session fails everything.
            self._abort(
                list(self._queue),
                f"The connection to the device was lost: {reason}",
                retry=state == SessionState.DISCONNECTED,
            )

    def _abort(self, operations: list[_Operation], reason: str, *, retry: bool = True) -> None:
        """The connection broke (or the engine closed) while ``operations`` waited.

        With ``retry``, a request not sent yet stays queued for the next session (hash-addressed
        ones are looked up again there, under its changeset) and a read already sent is tried
        once more; a write sent fails (it may or may not have reached the controller: it is
        never repeated behind the caller's back); what nobody waits for any more is dropped.
        Without ``retry`` everything fails, saying whether it was sent.
        """
        for operation in operations:
            if operation.future.done():
                continue
            if retry and (
                not operation.sent or (operation.idempotent and operation.retries_left > 0)
            ):
                if operation.waiters <= 0:  # nobody waits for it any more
                    self._queue.remove(operation)
                    continue
                if operation.sent:
                    operation.retries_left -= 1
                # It joins the next session afresh, its index looked up under that changeset.
                operation.started = operation.sent = False
                if operation.id_hash is not None:
                    operation.index = None
                continue
            error = (
                SessionAbortedError(reason)
                if operation.sent
                else NotSentError(f"{reason}; the request was not sent")
            )
            self._fail(operation, error)

    # -- one bus session ----------------------------------------------------------------------

    async def _bus_session(self, controller: int) -> None:
        operations = self._pending(controller)
        for operation in operations:
            operation.started = True
        self._inbox = asyncio.Queue()
        self.bus_sessions += 1
        self._holding = controller
        self._answered = False  # the controller answered in this session: the bus is ours
        taken_back = False
        try:
            changeset = await self._read_changeset(controller)
            self._note_changeset(controller, changeset)
            _LOGGER.debug(
                "Bus session with 0x%04X: %d operations, changeset %08X",
                controller,
                len(operations),
                changeset,
            )
            await self._run(controller, changeset, operations)
            # Operations queued while this session ran join it.
            late = [op for op in self._pending(controller) if op not in operations]
            for operation in late:
                operation.started = True
            if late:
                changeset = await self._read_changeset(controller)
                self._note_changeset(controller, changeset)
                await self._run(controller, changeset, late)
        except _BusTakenBackError as err:
            taken_back = True  # nothing to give back; its fresh offer starts the next session
            self._abort(self._pending(controller), str(err))
        except Exception as err:
            if not isinstance(err, VBusError):
                # A bug: what the session took fails now, not once the bus is given back (a
                # deadline meanwhile would call requests never sent "not known").
                self._fail_unexpected(controller, err, started=True)
            raise
        finally:
            try:
                if not taken_back:
                    await self._release(controller)
            finally:  # even if giving the bus back fails: else no session would ever run again
                self._holding = None
                self._inbox = None

    def _note_changeset(self, controller: int, changeset: int) -> None:
        """Remember the changeset just read; tell the listeners."""
        old = self.last_changeset.get(controller)
        self.last_changeset[controller] = changeset
        for listener in list(self._changeset_listeners):
            try:
                listener(controller, old, changeset)
            except Exception:
                _LOGGER.exception("Error in a changeset listener")

    async def _run(
        self, controller: int, changeset: int, operations: list[_Operation], *, again: bool = True
    ) -> None:
        for operation in operations:
            if operation.action == Action.CHANGESET:
                self._finish(operation, ValueResult(CHANGESET_INDEX, changeset, changeset))
        looked_up, asked = await self._resolve_indices(controller, changeset, operations)
        if asked:  # even if no look-up was answered: late answers may follow
            current = await self._read_changeset(controller)  # resynchronise after look-ups
            if current != changeset:
                # The value list changed under us (a firmware update, a new configuration):
                # the indices just looked up may point elsewhere now. Look them up again, once.
                self._note_changeset(controller, current)
                self._forget_indices(controller, changeset, current, operations, fail=not again)
                if again:
                    remaining = [op for op in operations if not op.future.done()]
                    await self._run(controller, current, remaining, again=False)
                    return
                changeset = current
            else:
                self._confirm_indices(controller, changeset, looked_up)
        writes = [op for op in operations if op.action == Action.SET and op.index is not None]
        await self._write(controller, changeset, writes)
        if writes:
            await self._read_changeset(controller)  # resynchronise after writes
        for operation in operations:
            if operation.action == Action.GET and operation.index is not None:
                await self._transfer(controller, changeset, operation, CMD_GET, 0)

    async def _write(self, controller: int, changeset: int, writes: list[_Operation]) -> None:
        """Send the writes; one to an index written before (by hash, and by index) waits.

        A resynchronisation comes first, so that a late answer to the earlier write cannot be
        taken for its acknowledgement.
        """
        for number, operation in enumerate(writes):
            if operation.index in (op.index for op in writes[:number]):
                await self._read_changeset(controller)
            await self._transfer(controller, changeset, operation, CMD_SET, operation.value)

    def _confirm_indices(
        self, controller: int, changeset: int, looked_up: list[_Operation]
    ) -> None:
        """The changeset did not change during the look-ups: cache the indices, answer them."""
        for operation in looked_up:
            index, id_hash = operation.index, operation.id_hash
            assert index is not None and id_hash is not None  # noqa: PT018, S101 - looked up
            self.cache.put(controller, changeset, id_hash, index)
            if operation.action == Action.LOOKUP:
                self._finish(operation, ValueResult(index, id_hash, changeset))

    def _forget_indices(
        self, controller: int, old: int, new: int, operations: list[_Operation], *, fail: bool
    ) -> None:
        """The changeset changed from ``old`` to ``new``: drop looked-up indices (or fail)."""
        _LOGGER.warning(
            "The changeset of 0x%04X changed from %08X to %08X during a bus session",
            controller,
            old,
            new,
        )
        for operation in operations:
            if operation.id_hash is None or operation.future.done():
                continue
            operation.index = None
            if fail:
                self._fail(
                    operation,
                    ChangesetChangedError(
                        f"The value list of controller 0x{controller:04X} kept changing while "
                        "its values were looked up; nothing was written"
                    ),
                )

    async def _resolve_indices(
        self, controller: int, changeset: int, operations: list[_Operation]
    ) -> tuple[list[_Operation], bool]:
        """Fill in the indices of hash-addressed operations.

        Return those looked up on the bus, and whether any look-up was sent. Indices from the
        cache are final; those looked up are cached (and look-ups answered) only once a
        resynchronisation confirms the changeset did not change meanwhile.
        """
        asked = False
        looked_up: list[_Operation] = []
        found: dict[int, int] = {}  # hash -> index looked up in this session
        for operation in operations:
            if operation.index is not None or operation.id_hash is None:
                continue
            if operation not in self._queue:
                continue  # every caller gave up
            index = self.cache.get(controller, changeset, operation.id_hash)
            if index is None:
                index = found.get(operation.id_hash)
                if index is None:
                    asked = True
                    index = await self._lookup(controller, operation)
                    if index is None:
                        continue
                    found[operation.id_hash] = index
                looked_up.append(operation)
            operation.index = index
            if operation.action == Action.LOOKUP and operation not in looked_up:
                self._finish(operation, ValueResult(index, operation.id_hash, changeset))
        return looked_up, asked

    def _finish(self, operation: _Operation, result: ValueResult) -> None:
        if operation in self._queue:
            self._queue.remove(operation)
        if not operation.future.done():
            operation.future.set_result(result)

    def _fail(self, operation: _Operation, error: ParameterError) -> None:
        if operation in self._queue:
            self._queue.remove(operation)
        if not operation.future.done():
            operation.future.set_exception(error)

    async def _read_changeset(self, controller: int) -> int:
        answer = await self._request(
            controller,
            Datagram(controller, self.address, CMD_GET, CHANGESET_INDEX, 0),
            lambda d: d.command == CMD_ANSWER and d.param16 == CHANGESET_INDEX,
        )
        if answer is None:
            msg = f"The controller 0x{controller:04X} did not answer the changeset request"
            raise NoAnswerError(msg)
        if isinstance(answer, ParameterError):
            raise answer
        return answer.param32 & 0xFFFFFFFF

    async def _lookup(self, controller: int, operation: _Operation) -> int | None:
        id_hash = operation.id_hash or 0
        answer = await self._request(
            controller,
            Datagram(controller, self.address, CMD_LOOKUP, 0, _signed(id_hash)),
            lambda d: (
                d.command in (CMD_ANSWER, CMD_LOOKUP_ANSWER) and d.param32 == _signed(id_hash)
            ),
        )
        if answer is None:
            self._fail(
                operation,
                UnknownValueError(
                    f"The controller 0x{controller:04X} does not know the value with "
                    f"ID hash {id_hash} (0x{id_hash:08X})"
                ),
            )
            return None
        if isinstance(answer, ParameterError):
            self._fail(operation, answer)
            return None
        return answer.param16

    async def _transfer(
        self, controller: int, changeset: int, operation: _Operation, command: int, value: int
    ) -> None:
        if operation not in self._queue:
            return  # every caller gave up before it was sent
        index = operation.index or 0
        others: set[int] = set()
        if command == CMD_SET:
            others = self._unanswered.get((controller, index), set()) - {value}
            self._note_sent(controller, index, value)
        answer = await self._request(
            controller,
            Datagram(controller, self.address, command, index, value),
            lambda d: d.command == CMD_ANSWER and d.param16 == index and d.param32 not in others,
            nack_index=index,
            operation=operation,
        )
        if command == CMD_SET and answer is not None:  # answered (or refused): no late answer
            self._unanswered.get((controller, index), set()).discard(value)
        if answer is None:
            self._fail(
                operation,
                NoAnswerError(
                    f"The controller 0x{controller:04X} did not answer for value index {index}"
                ),
            )
        elif isinstance(answer, ParameterError):
            self._fail(operation, answer)
        else:
            if command == CMD_SET:
                _LOGGER.info(
                    "Wrote value index %d of 0x%04X: requested %d, now %d",
                    index,
                    controller,
                    value,
                    answer.param32,
                )
            self._finish(operation, ValueResult(index, answer.param32, changeset))

    def _note_sent(self, controller: int, index: int, value: int) -> None:
        """Remember ``value`` as sent to ``index`` and not answered yet (bounded, newest kept)."""
        key = (controller, index)
        values = self._unanswered.pop(key, set())
        if len(values) >= MAX_UNANSWERED_VALUES:
            values.clear()
        values.add(value)
        self._unanswered[key] = values  # the most recent last
        while len(self._unanswered) > MAX_UNANSWERED_INDICES:
            del self._unanswered[next(iter(self._unanswered))]

    async def _request(
        self,
        controller: int,
        request: Datagram,
        matches: Callable[[Datagram], bool],
        *,
        nack_index: int | None = None,
        operation: _Operation | None = None,
    ) -> Datagram | ParameterError | None:
        """Send ``request`` up to ``tries`` times; return the matching answer, a NACK or None.

        ``operation`` is marked sent once its request went out.
        """
        inbox = self._inbox
        assert inbox is not None  # noqa: S101 - only called inside a bus session
        timeout = self.timing.request
        for _ in range(self.timing.tries):
            self._take_pending_offer(inbox, controller)
            await self.bus.send(request)
            if operation is not None:
                operation.sent = True
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        frame = await inbox.get()
                        if frame is _ABORT:
                            msg = "The connection to the device was lost during a bus session"
                            raise SessionAbortedError(msg)
                        if not isinstance(frame, Datagram) or frame.source != controller:
                            continue
                        if _is_offer(frame):
                            self._offered_during_session(controller)
                            break  # our first request never reached it: again, in this window
                        # Whatever it says to us (the inbox keeps no other datagram of it), even
                        # a refusal of another request: the bus is ours, an offer takes it back.
                        self._answered = True
                        if nack_index is not None and _is_nack(frame, nack_index):
                            return ValueRejectedError(
                                f"The controller 0x{controller:04X} refused value index "
                                f"{nack_index}"
                            )
                        if matches(frame):
                            return frame
                        _LOGGER.debug("Discarded an unexpected answer: %s", frame)
            except TimeoutError:
                timeout += self.timing.increment
        return None

    def _take_pending_offer(self, inbox: asyncio.Queue[Frame], controller: int) -> None:
        """Heed an offer of ``controller`` that came before the request about to go out.

        The offer may have arrived while the session waited for a timer, at the very moment
        the next request is due: sent regardless, the request would be the first of the
        controller's new window (a restart's, say) instead of the changeset read. The other
        frames stay in the inbox, in order.
        """
        waiting: list[Frame] = []
        while not inbox.empty():
            frame = inbox.get_nowait()
            if frame.source == controller and _is_offer(frame):
                self._offered_during_session(controller)  # the session ends if it answered
                continue  # nothing answered yet: the request goes out in this window
            waiting.append(frame)
        for frame in waiting:
            inbox.put_nowait(frame)

    def _offered_during_session(self, controller: int) -> None:
        """The controller offered the bus: it is master, it will not answer the request.

        Before it answered anything in this session, our first request never reached it (it is
        sent again); after that, it restarted or took the bus back: the session ends.
        """
        if self._answered:
            msg = (
                f"The controller 0x{controller:04X} offered the bus during a bus session: it "
                "took the bus back"
            )
            raise _BusTakenBackError(msg)

    async def _release(self, controller: int) -> None:
        """Give the bus back and wait for the controller's next packet as confirmation."""
        inbox = self._inbox
        for _ in range(self.timing.release_tries):
            try:
                await self.bus.send(Datagram(controller, self.address, CMD_RELEASE))
            except VBusConnectionError:
                return  # nothing to release on a dead connection
            if inbox is None:
                return
            try:
                async with asyncio.timeout(self.timing.release):
                    while True:
                        frame = await inbox.get()
                        if frame is _ABORT:
                            return
                        if frame.source == controller and (
                            isinstance(frame, Packet) or frame.command == CMD_OFFER
                        ):
                            return  # the controller is master again
            except TimeoutError:
                continue
        _LOGGER.debug("No packet from 0x%04X after releasing the bus", controller)


_ABORT: Final = Packet(0, 0, 0)  # a marker put into the inbox when the connection breaks


def _signed(value: int) -> int:
    """A 32-bit value as the signed parameter datagrams carry."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _is_offer(frame: Frame) -> bool:
    """Whether ``frame`` is a bus offer (0x0500 to everyone)."""
    return (
        isinstance(frame, Datagram)
        and frame.command == CMD_OFFER
        and frame.destination == BROADCAST
    )


def _is_nack(frame: Datagram, index: int) -> bool:
    return frame.command & 0xFF80 == CMD_NACK and frame.param16 == index
