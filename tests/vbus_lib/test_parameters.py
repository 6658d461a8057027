"""The parameterization engine against the emulator's DeltaSol MX over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import pytest

from aiovbus.cli import main
from aiovbus.emulator import (
    ControllerSimulator,
    Emulator,
    Personality,
    StaticSource,
)
from aiovbus.parameters import (
    INBOX_LIMIT,
    MAX_OFFERERS,
    MAX_UNANSWERED_INDICES,
    MAX_UNANSWERED_VALUES,
    BusNotOfferedError,
    ChangesetChangedError,
    EngineLimit,
    MemoryIndexCache,
    ParameterEngine,
    SessionAbortedError,
    Timing,
    UnknownValueError,
    ValueOutOfRangeError,
    ValueRejectedError,
    ValueResult,
)
from aiovbus.protocol import (
    BROADCAST,
    CMD_ANSWER,
    CMD_GET,
    CMD_OFFER,
    CMD_RELEASE,
    Datagram,
    Frame,
    Packet,
)
from aiovbus.session import ConnectionConfig, SessionState, VBusSession

from .emulator.common import SECTION_7

pytestmark = pytest.mark.usefixtures("socket_enabled")

MX = 0x7E11
R1_MANUAL = 763685401  # Relais_Regler_R1_Handbetrieb, index 1977 on the MX 2.08
CHANGESET = 0x2734DABC
# Requests wait up to 1 s for an answer (the emulator answers in milliseconds): tests that count
# bytes on the wire or writes in the store must not see a retry because the machine is busy.
FAST = Timing(offer=2.0, request=1.0, increment=0.1, release=0.2, deadline=10.0)
LIVE = Packet(0x0010, MX, 0x0100, bytes(100))


@dataclass
class Rig:
    emulator: Emulator
    session: VBusSession
    engine: ParameterEngine
    wire: list[tuple[str, str]]

    @property
    def controller(self) -> ControllerSimulator:
        return self.emulator.controller(1)


class RecordingBus:
    """The session, with every datagram sent and received written down."""

    def __init__(self, session: VBusSession, wire: list[tuple[str, str]]) -> None:
        self.session = session
        self.wire = wire

    def subscribe(self, listener: Callable[[Frame], None]) -> Callable[[], None]:
        def record(frame: Frame) -> None:
            if isinstance(frame, Datagram):
                self.wire.append(("RX", frame.encode().hex(" ").upper()))
            listener(frame)

        return self.session.subscribe(record)

    def add_state_listener(self, listener):
        return self.session.add_state_listener(listener)

    async def send(self, frame: Frame) -> None:
        self.wire.append(("TX", frame.encode().hex(" ").upper()))
        await self.session.send(frame)


async def make_rig(timing: Timing = FAST, **emulator_options) -> Rig:
    emulator = Emulator(
        personality=Personality.DL2,
        channels={1: StaticSource(LIVE)},
        offer_interval=emulator_options.pop("offer_interval", None),
        **emulator_options,
    )
    await emulator.start()
    session = VBusSession(ConnectionConfig(host="127.0.0.1", port=emulator.port))
    session.start()
    await session.wait_connected()
    wire: list[tuple[str, str]] = []
    engine = ParameterEngine(RecordingBus(session, wire), timing=timing)
    return Rig(emulator, session, engine, wire)


async def close_rig(rig: Rig) -> None:
    await rig.engine.close()
    await rig.session.stop()
    await rig.emulator.stop()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = await make_rig()
    yield rig
    await close_rig(rig)


async def queued(rig: Rig, *coroutines) -> list[asyncio.Task[ValueResult]]:
    """Start operations, let them queue, then let the controller offer the bus once."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    await asyncio.sleep(0)  # each task runs up to its first await: it is queued
    await rig.controller.wait_bus_free()  # a previous session may still be releasing
    assert rig.controller.offer_bus()
    return tasks


async def test_the_reference_exchange_byte_for_byte(rig: Rig) -> None:
    set_task, get_task = await queued(
        rig, rig.engine.set(MX, 2, id_hash=R1_MANUAL), rig.engine.get(MX, id_hash=R1_MANUAL)
    )
    assert await set_task == ValueResult(1977, 2, CHANGESET)
    assert await get_task == ValueResult(1977, 2, CHANGESET)
    await rig.controller.wait_bus_free()
    assert rig.wire == SECTION_7
    assert rig.controller.store["Relais_Regler_R1_Handbetrieb"].value == 2
    assert rig.engine.bus_sessions == 1


async def test_five_writes_share_one_bus_session(rig: Rig) -> None:
    store = rig.controller.store
    targets = [v for v in store.values() if v.index != 0 and v.maximum is not None][:5]
    assert len(targets) == 5
    tasks = await queued(rig, *(rig.engine.set(MX, v.minimum or 0, index=v.index) for v in targets))
    results = await asyncio.gather(*tasks)
    assert [r.index for r in results] == [v.index for v in targets]
    assert rig.controller.offers == 1
    assert rig.engine.bus_sessions == 1
    assert store.writes == [(v.index, v.minimum or 0) for v in targets]


async def test_cached_index_needs_no_lookup_and_a_new_changeset_looks_up_again(rig: Rig) -> None:
    cache = MemoryIndexCache()
    rig.engine.cache = cache
    (task,) = await queued(rig, rig.engine.get(MX, id_hash=R1_MANUAL))
    assert (await task).index == 1977
    assert cache.entries == {"7E11:2734DABC:2D84EA19": 1977}
    rig.wire.clear()
    (task,) = await queued(rig, rig.engine.get(MX, id_hash=R1_MANUAL))
    await task
    assert [line for line in rig.wire if line[0] == "TX"][1:2] == [
        ("TX", "AA 11 7E 20 00 20 00 03 39 07 00 00 00 00 01 6C")  # straight to the read
    ]
    # A firmware update moves the value and changes the changeset.
    rig.controller.store.firmware_update(0x11112222, index_shift=3)
    (task,) = await queued(rig, rig.engine.set(MX, 1, id_hash=R1_MANUAL))
    result = await task
    assert result == ValueResult(1980, 1, 0x11112222)
    assert rig.controller.store.writes[-1] == (1980, 1)


LOOKUP_R1 = "AA 11 7E 20 00 20 00 11 00 00 19 6A 04 2D 18 53"  # 0x1100: index of R1_MANUAL?


async def test_changeset_changing_after_a_lookup_looks_up_again(rig: Rig) -> None:
    """A firmware update right after the look-up: the old index is never written."""
    rig.controller.faults.update_after_lookups = 1
    (task,) = await queued(rig, rig.engine.set(MX, 1, id_hash=R1_MANUAL))
    assert await task == ValueResult(1978, 1, CHANGESET + 1)
    assert rig.controller.store.writes == [(1978, 1)]
    assert [line for line in rig.wire if line[0] == "TX"].count(("TX", LOOKUP_R1)) == 2
    assert rig.engine.last_changeset[MX] == CHANGESET + 1
    assert rig.engine.bus_sessions == 1


async def test_changeset_changing_twice_fails_without_writing(rig: Rig) -> None:
    rig.controller.faults.update_after_lookups = 2
    (task,) = await queued(rig, rig.engine.set(MX, 1, id_hash=R1_MANUAL))
    with pytest.raises(ChangesetChangedError, match="kept changing"):
        await task
    assert rig.controller.store.writes == []
    await rig.controller.wait_bus_free()  # the bus was handed back


async def test_clamped_write_reports_the_acknowledged_value(rig: Rig) -> None:
    value = rig.controller.store["Relais_Regler_R1_Handbetrieb"]
    (task,) = await queued(rig, rig.engine.set(MX, 99, index=value.index))
    assert (await task).value == value.maximum
    assert value.value == value.maximum


async def test_rejected_index_and_unknown_hash() -> None:
    # An unknown hash gets no answer at all: short request timeouts keep the test quick.
    rig = await make_rig(Timing(offer=2.0, request=0.1, increment=0.1, release=0.2, deadline=10))
    try:
        missing, unknown = await queued(
            rig, rig.engine.get(MX, index=4000), rig.engine.get(MX, id_hash=12345)
        )
        with pytest.raises(ValueRejectedError, match="refused value index 4000"):
            await missing
        with pytest.raises(UnknownValueError, match="ID hash 12345"):
            await unknown
        await rig.controller.wait_bus_free()
    finally:
        await close_rig(rig)


async def test_no_offer() -> None:
    rig = await make_rig(Timing(offer=0.1, deadline=5))
    try:
        with pytest.raises(BusNotOfferedError, match=r"did not offer the bus within 0\.1 s"):
            await rig.engine.get(MX, index=1977)
    finally:
        await close_rig(rig)


@pytest.mark.parametrize(
    "fault",
    [
        {"drop_answers": 1},
        {"duplicate_answers": True},
    ],
)
async def test_dropped_and_duplicated_answers(rig: Rig, fault: dict) -> None:
    for name, setting in fault.items():
        setattr(rig.emulator.faults, name, setting)
    set_task, get_task = await queued(
        rig, rig.engine.set(MX, 2, id_hash=R1_MANUAL), rig.engine.get(MX, id_hash=R1_MANUAL)
    )
    assert (await set_task).value == 2
    assert (await get_task).value == 2
    assert rig.controller.store.writes == [(1977, 2)]
    await rig.controller.wait_bus_free()


async def test_late_answers_are_never_mis_associated() -> None:
    """The reference's §6 scenario: a late look-up answer must not be taken for a read."""
    rig = await make_rig(Timing(offer=2, request=0.1, increment=0.05, release=0.3, deadline=10))
    try:
        rig.controller.lookup_answer_command = 0x0100  # the ambiguous answer form of §6
        rig.emulator.faults.answer_delay = 0.12  # later than the first try's 0.1 s
        set_task, get_task = await queued(
            rig, rig.engine.set(MX, 0, id_hash=R1_MANUAL), rig.engine.get(MX, id_hash=R1_MANUAL)
        )
        assert (await set_task).value == 0
        assert (await get_task).value == 0  # never the hash 763685401
        # A late acknowledgement makes the write go out again, but only ever this write.
        assert set(rig.controller.store.writes) == {(1977, 0)}
        await rig.controller.wait_bus_free()
    finally:
        await close_rig(rig)


@pytest.mark.parametrize("received", [2, 1], ids=["write sent", "write not sent yet"])
async def test_connection_drop_mid_session(received: int) -> None:
    """A write sent fails (never repeated behind the caller's back); a read is tried again.

    A write the session had not sent yet changed nothing: it waits for the next bus session
    (issue 13; it used to fail as "connection lost" as well).
    """
    rig = await make_rig(Timing(offer=5, request=2, increment=0, release=0.2, deadline=20))
    try:
        rig.emulator.faults.answer_delay = 1.5  # the session waits, then the logger reboots
        set_task, get_task = await queued(
            rig, rig.engine.set(MX, 2, index=1977), rig.engine.get(MX, index=1977)
        )
        await rig.controller.wait_for_received(received)  # the changeset read (and the write)
        lost = asyncio.Event()
        rig.session.add_state_listener(
            lambda state, _reason: state == SessionState.DISCONNECTED and lost.set()
        )
        await rig.emulator.reboot()
        async with asyncio.timeout(10):
            await lost.wait()
        if received == 2:
            with pytest.raises(SessionAbortedError):
                await set_task
        rig.emulator.faults.answer_delay = 0
        await rig.session.wait_connected()
        rig.controller.release_bus()
        rig.controller.offer_bus()
        if received == 1:
            assert (await set_task).value == 2
        assert (await get_task).value == rig.controller.store.read(1977)
        assert rig.controller.store.writes == [(1977, 2)]  # once
    finally:
        await close_rig(rig)


async def test_close_fails_pending_operations(rig: Rig) -> None:
    task = asyncio.create_task(rig.engine.get(MX, index=1977))
    await asyncio.sleep(0)
    await rig.engine.close()
    with pytest.raises(SessionAbortedError, match="closed"):
        await task


async def test_index_or_hash_is_required(rig: Rig) -> None:
    with pytest.raises(ValueError, match="index or a value-ID hash"):
        await rig.engine.get(MX)


async def test_command_line_set_and_get(capsys: pytest.CaptureFixture[str]) -> None:
    async with Emulator(
        personality=Personality.DL2, channels={1: StaticSource(LIVE)}, offer_interval=0.05
    ) as emulator:
        base = ["--host", "127.0.0.1", "--port", str(emulator.port)]
        name = ["--value-id", "Relais_Regler_R1_Handbetrieb"]
        assert await asyncio.to_thread(main, ["set-value", *base, *name, "--value", "2"]) == 0
        assert capsys.readouterr().out == '{"index": 1977, "value": 2, "changeset": 657775292}\n'
        assert await asyncio.to_thread(main, ["get-value", *base, "--value-index", "1977"]) == 0
        assert capsys.readouterr().out == '{"index": 1977, "value": 2, "changeset": 657775292}\n'
        code = await asyncio.to_thread(
            main, ["get-value", *base, "--value-index", "4000", "--controller", "0x7E11"]
        )
        assert code == 1
        assert capsys.readouterr().err == (
            "vbus get-value: The controller 0x7E11 refused value index 4000\n"
        )
        assert emulator.controller(1).store.writes == [(1977, 2)]


async def test_queued_writes_to_one_value_coalesce(rig: Rig) -> None:
    first, second, third = await queued(
        rig,
        rig.engine.set(MX, 0, index=1977),
        rig.engine.set(MX, 1, index=1977),
        rig.engine.set(MX, 2, index=1977),
    )
    assert [(await t).value for t in (first, second, third)] == [2, 2, 2]
    assert rig.controller.store.writes == [(1977, 2)]


@pytest.mark.parametrize("gives_up", ["cancelled", "deadline"])
async def test_a_merged_write_is_sent_while_any_caller_waits(rig: Rig, gives_up: str) -> None:
    """Issue 13, defect 1: the first caller gives up; the write merged into its request is not.

    It was dropped from the queue with the first caller, cancelled or at its deadline: nothing
    was sent at the next offer and the second caller waited its whole deadline for "not known
    whether it changed". (tests/reliability/test_model_parameters.py interleaves both at will.)
    """
    # The controller offers when told: the worker waits for that as long as a caller may.
    waiting = replace(FAST, offer=FAST.deadline)
    # A caller's deadline starts when it submits: the first caller's is short.
    rig.engine.timing = replace(waiting, deadline=0.5) if gives_up == "deadline" else waiting
    first = asyncio.create_task(rig.engine.set(MX, 1, index=1977))
    await asyncio.sleep(0)  # queued
    rig.engine.timing = waiting
    second = asyncio.create_task(rig.engine.set(MX, 3, index=1977))
    await asyncio.sleep(0)  # merged into the first caller's queued request
    assert [op.waiters for op in rig.engine._queue] == [2]
    if gives_up == "cancelled":
        first.cancel()  # a script stopped, an automation in restart mode
        with pytest.raises(asyncio.CancelledError):
            await first
    else:
        with pytest.raises(BusNotOfferedError, match="was not sent within"):
            await first
    await rig.controller.wait_bus_free()
    assert rig.controller.offer_bus()
    assert await second == ValueResult(1977, 3, CHANGESET)
    assert rig.controller.store.writes == [(1977, 3)]


async def test_a_request_nobody_waits_for_is_dropped_unsent(rig: Rig) -> None:
    task = asyncio.create_task(rig.engine.set(MX, 1, index=1977))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.engine._queue == []
    worker = rig.engine._workers[MX]  # still waiting for an offer
    await rig.controller.wait_bus_free()
    assert rig.controller.offer_bus()
    async with asyncio.timeout(10):
        await worker  # it ends without taking the bus
    assert rig.wire == [("RX", Datagram(BROADCAST, MX, CMD_OFFER).encode().hex(" ").upper())]
    assert rig.controller.store.writes == []


async def test_a_closed_engine_takes_no_more_work(rig: Rig) -> None:
    await rig.engine.close()
    with pytest.raises(SessionAbortedError, match="closed"):
        await rig.engine.get(MX, index=1977)


async def test_values_outside_the_given_range_never_reach_the_bus(rig: Rig) -> None:
    with pytest.raises(ValueOutOfRangeError, match=r"outside the allowed range 0\.\.4"):
        await rig.engine.set(MX, 5, index=1977, minimum=0, maximum=4)
    with pytest.raises(ValueOutOfRangeError):
        await rig.engine.set(MX, 2**31, index=1977)
    assert rig.wire == []


class FakeBus:
    """A bus in memory: the test delivers frames.

    The MX answers changeset reads at once and confirms the release; ``before_answer`` runs
    once, just before the first answer.
    """

    def __init__(self) -> None:
        self.listeners: list[Callable[[Frame], None]] = []
        self.before_answer: Callable[[], None] | None = None

    def subscribe(self, listener: Callable[[Frame], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def add_state_listener(self, _listener) -> Callable[[], None]:
        return lambda: None

    async def send(self, frame: Frame) -> None:
        assert isinstance(frame, Datagram)
        if frame.command == CMD_GET:
            if self.before_answer is not None:
                self.before_answer()
                self.before_answer = None
            self.deliver(Datagram(frame.source, MX, CMD_ANSWER, 0, CHANGESET))
        elif frame.command == CMD_RELEASE:
            self.deliver(LIVE)

    def deliver(self, frame: Frame) -> None:
        for listener in list(self.listeners):
            listener(frame)


# Fake-bus answers come at once; a dropped one costs one 0.05 s retry.
FAKE_BUS = Timing(offer=10, request=0.05, increment=0, release=1, release_tries=1, deadline=20)


class _Offers(dict[int, asyncio.Event]):
    """The engine's offer events; :attr:`waiting` is set when it waits for the MX's offer."""

    def __init__(self, engine: ParameterEngine) -> None:
        super().__init__(engine._offers)
        self.waiting = asyncio.Event()

    def setdefault(self, key: int, default: asyncio.Event) -> asyncio.Event:  # type: ignore[override]
        event = super().setdefault(key, default)
        if key == MX:
            self.waiting.set()  # by the time a waiter runs, the engine awaits the offer
        return event


async def changeset_on_offer(bus: FakeBus, engine: ParameterEngine) -> ValueResult:
    """Read the MX's changeset: queue it, and offer the bus once the engine waits for that."""
    engine._offers = offers = _Offers(engine)
    task = asyncio.create_task(engine.changeset(MX))
    async with asyncio.timeout(10):
        await offers.waiting.wait()
        bus.deliver(Datagram(BROADCAST, MX, CMD_OFFER))
        return await task


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_offers_are_tracked_for_a_bounded_number_of_addresses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = FakeBus()
    engine = ParameterEngine(bus, timing=FAKE_BUS)
    reached: list[EngineLimit] = []
    engine.add_limit_listener(reached.append)
    offerers = range(0x1000, 0x1000 + 2 * MAX_OFFERERS)
    for _ in range(2):
        for source in offerers:
            bus.deliver(Datagram(BROADCAST, source, CMD_OFFER))
    tracked = set(offerers[:MAX_OFFERERS])
    assert set(engine._offers) == tracked
    assert set(engine._offer_times) == tracked
    assert engine.ignored_offers == 2 * MAX_OFFERERS
    assert warnings(caplog) == [
        (
            f"Bus offers came from more than {MAX_OFFERERS} addresses; ignoring those from new "
            f"ones such as 0x{0x1000 + MAX_OFFERERS:04X} (a faulty or foreign device on the bus?)"
        )
    ]
    # The controller an operation waits for is tracked all the same.
    assert await changeset_on_offer(bus, engine) == ValueResult(0, CHANGESET, CHANGESET)
    assert engine.ignored_offers == 2 * MAX_OFFERERS
    assert len(warnings(caplog)) == 1
    assert reached == [EngineLimit.OFFERERS]  # once, like the warning
    assert EngineLimit.OFFERERS.limit == MAX_OFFERERS
    await engine.close()


async def test_a_bus_session_keeps_a_bounded_inbox(caplog: pytest.LogCaptureFixture) -> None:
    """Only the held controller's frames wait for the session, at most INBOX_LIMIT of them."""
    bus = FakeBus()
    engine = ParameterEngine(bus, timing=FAKE_BUS)
    reached: list[EngineLimit] = []
    stop_listening = engine.add_limit_listener(reached.append)
    waiting: list[int] = []

    def flood() -> None:
        for index in range(3 * INBOX_LIMIT):
            bus.deliver(Packet(0x0010, MX, 0x0100, bytes(4)))  # counted when dropped
            bus.deliver(Packet(0x0010, 0x7E12 + index, 0x0100))  # other devices: not kept
            bus.deliver(Datagram(0x6651, MX, CMD_GET))  # to another device: not kept
        waiting.append(engine._inbox.qsize() if engine._inbox else -1)

    bus.before_answer = flood
    # The first answer comes after the flood and is dropped too; the retry gets the next one.
    assert await changeset_on_offer(bus, engine) == ValueResult(0, CHANGESET, CHANGESET)
    assert waiting == [INBOX_LIMIT]
    assert engine.dropped_frames == 2 * INBOX_LIMIT + 1
    assert engine._inbox is None
    assert warnings(caplog) == [
        (
            f"More than {INBOX_LIMIT} frames from 0x7E11 waited during a bus session; dropping "
            "further ones (a faulty or foreign device sending with its address?)"
        )
    ]
    assert reached == [EngineLimit.BUS_SESSION_FRAMES]
    assert EngineLimit.BUS_SESSION_FRAMES.limit == INBOX_LIMIT
    stop_listening()
    assert engine._limit_listeners == []
    await engine.close()


class RestartingBus(FakeBus):
    """Answers every read (index n holds n + 1); right after its first answer, the MX restarts.

    The answer and the restarted controller's offer wait in the engine's inbox together.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int, int]] = []
        self.restarted = False

    async def send(self, frame: Frame) -> None:
        assert isinstance(frame, Datagram)
        self.sent.append((frame.command, frame.param16))
        if frame.command == CMD_GET:
            value = CHANGESET if frame.param16 == 0 else frame.param16 + 1
            self.deliver(Datagram(frame.source, MX, CMD_ANSWER, frame.param16, value))
            if not self.restarted:
                self.restarted = True
                self.deliver(Datagram(BROADCAST, MX, CMD_OFFER))
        elif frame.command == CMD_RELEASE:
            self.deliver(LIVE)


async def test_an_offer_that_came_with_an_answer_ends_the_session_before_the_next_request() -> None:
    """The controller answered and restarted: the next session starts with the changeset read.

    Sent after the answer regardless of the offer waiting behind it, the read of index 5 would
    have been the first request of the restarted controller's window.
    """
    bus = RestartingBus()
    engine = ParameterEngine(bus, timing=FAKE_BUS)
    engine._offers = offers = _Offers(engine)
    task = asyncio.create_task(engine.get(MX, index=5))
    async with asyncio.timeout(10):
        await offers.waiting.wait()
        bus.deliver(Datagram(BROADCAST, MX, CMD_OFFER))
        assert await task == ValueResult(5, 6, CHANGESET)
    assert bus.sent == [(CMD_GET, 0), (CMD_GET, 0), (CMD_GET, 5), (CMD_RELEASE, 0)]
    await engine.close()


def test_unanswered_writes_are_remembered_within_their_bounds() -> None:
    """What is kept so that late answers are recognised: the newest, at most so many."""
    engine = ParameterEngine(FakeBus(), timing=FAKE_BUS)
    for index in range(2 * MAX_UNANSWERED_INDICES):
        for value in range(3 * MAX_UNANSWERED_VALUES):
            engine._note_sent(0x7E11, index, value)
    assert len(engine._unanswered) == MAX_UNANSWERED_INDICES
    newest = range(MAX_UNANSWERED_INDICES, 2 * MAX_UNANSWERED_INDICES)
    assert list(engine._unanswered) == [(0x7E11, index) for index in newest]
    kept = 3 * MAX_UNANSWERED_VALUES % MAX_UNANSWERED_VALUES or MAX_UNANSWERED_VALUES
    last = 3 * MAX_UNANSWERED_VALUES
    assert all(values == set(range(last - kept, last)) for values in engine._unanswered.values())
