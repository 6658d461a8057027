"""An accelerated soak: hours of a live VBus replayed at full speed, with writes and drops.

The three DL3 recordings of the reference data (864 header sets of a DeltaSol MX system,
snapshots five minutes apart) are re-timed to one header set per second, the pace of a live
bus, and looped by the emulator's :class:`RecordingSource` behind a DL2 on loopback. A
:class:`VBusSession` decodes every packet with the bundled specification, as the integration
does, and a :class:`ParameterEngine` writes a controller value every five simulated minutes.
Four times per simulated hour the connection is dropped: a logger reboot, a connection cut in
the middle of a frame, a silent link (the watchdog's 60 s) and a reset (RST); once per hour the
line is corrupted for a minute (no drop expected).

Simulated time is the source's timeline: one second per header set. The session's clock (and
so its watchdog, backoff and health timer) runs on it, so a simulated hour takes as long as the
machine needs to move 3600 header sets through the stack, not an hour.

Measured: traced memory of everything except the emulator (``tracemalloc`` snapshots, after a
warm-up that primes every cache), the number of asyncio tasks, reconnects, writes, frames.
``scripts/soak`` runs 24 simulated hours; the test suite runs one.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiovbus.emulator import (
    ChannelSource,
    Cycle,
    Emulator,
    Personality,
    RecordingSource,
)
from aiovbus.parameters import ParameterEngine
from aiovbus.protocol import Packet
from aiovbus.recording import (
    HeaderSetStart,
    RecordedFrame,
    read_recording,
    write_recording,
)
from aiovbus.session import (
    ConnectionConfig,
    SessionState,
    VBusSession,
)
from aiovbus.specification import Specification
from aiovbus.valueid import value_id_hash

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from aiovbus.protocol import Frame

MX = 0x7E11
VALUE_ID = "Relais_Regler_R1_Handbetrieb"  # manual mode of relay 1: 0..4
HOUR = 3600
WRITE_EVERY = 300  # simulated seconds
#: Drops per simulated hour: (second of the hour, kind).
DROPS: tuple[tuple[int, str], ...] = (
    (900, "reboot"),
    (1800, "cut"),
    (2700, "silent"),
    (3100, "rst"),
)
CORRUPTION = (2220, 2280)  # one simulated minute of bit errors (every 97th byte)
WARM_UP = 1200  # simulated seconds before the memory baseline: every header set seen once
#: Allocations in these files are left out of the measurement: the emulator is the device, not
#: the client; this module's report grows by design; in asyncio's debug mode (which the test
#: harness of the latest lane turns on) every future keeps the traceback of its creation.
EXCLUDED = (
    "*/vbus/emulator/*",
    "*/reliability/soak.py",
    "*/tracemalloc.py",
    "*/logging/*",
    "*/_pytest/*",
    "*/traceback.py",
    "*/asyncio/format_helpers.py",
)
#: Traced memory may grow this much from the baseline to the end (cache contents come and go:
#: the spread over one hour is about 20 KiB); a leak of one small object per frame, write or
#: reconnect shows as megabytes, kilobytes per simulated hour.
GROWTH_LIMIT = 64 * 1024
#: Frames per traced allocation (more tell the emulator's allocations apart better, but each
#: one slows the run down).
TRACE_FRAMES = 1
PASSWORD = "soak-password"


def live_recording(paths: Sequence[Path]) -> bytes:
    """The channel-1 header sets of the recordings ``paths``, one second apart."""
    timed: list[HeaderSetStart | RecordedFrame] = []
    timestamp = 0
    for path in paths:
        for item in read_recording(path.read_bytes()):
            if isinstance(item, HeaderSetStart):
                timestamp += 1000
                timed.append(HeaderSetStart(timestamp))
            elif isinstance(item, RecordedFrame) and item.frame.channel == 1:
                timed.append(RecordedFrame(timestamp, item.frame))
    return write_recording(timed)


class SimulatedClock:
    """Seconds of the source's timeline; ``sleep`` waits for them (the session's clock)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + delay, future))
        try:
            await future
        finally:
            self._sleepers = [(t, f) for t, f in self._sleepers if f is not future]

    async def until(self, moment: float) -> None:
        await self.sleep(moment - self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, future in self._sleepers:
            if deadline <= self.now and not future.done():
                future.set_result(None)


class TimedSource(ChannelSource):
    """Wraps a source; every cycle moves the simulated clock by the cycle's delay."""

    def __init__(self, inner: ChannelSource, clock: SimulatedClock) -> None:
        super().__init__(name=inner.name, controller_address=inner.controller_address)
        self.inner = inner
        self.sim = clock
        self.cycles_sent = 0

    def cycles(self) -> Iterator[Cycle]:
        for cycle in self.inner.cycles():
            self.sim.advance(cycle.delay)
            self.cycles_sent += 1
            yield cycle


@dataclass
class Checkpoint:
    """One measurement."""

    second: int
    traced: int  # bytes, emulator excluded
    tasks: int


@dataclass
class SoakReport:
    """What a soak run measured."""

    simulated_hours: float
    wall_seconds: float = 0.0
    cycles: int = 0
    frames: int = 0
    packets: int = 0
    packets_decoded: int = 0
    datagrams: int = 0
    bytes: int = 0
    checksum_errors: int = 0
    writes: list[tuple[int, int]] = field(default_factory=list)  # (requested, acknowledged)
    drops: list[str] = field(default_factory=list)
    connects: int = 0
    reconnects: int = 0
    states: list[str] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    top_growth: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # library log records ≥ WARNING
    accepted_writes: int = 0  # writes the emulated controller accepted
    misplaced_writes: int = 0  # checkpoints whose write log was not the writes requested

    @property
    def tasks(self) -> set[int]:
        """The numbers of asyncio tasks seen at the checkpoints."""
        return {checkpoint.tasks for checkpoint in self.checkpoints}

    @property
    def memory_growth(self) -> int:
        """Traced bytes at the end minus at the baseline (after warm-up)."""
        return self.checkpoints[-1].traced - self.checkpoints[0].traced

    @property
    def memory_spread(self) -> int:
        """Largest minus smallest traced bytes over the checkpoints."""
        values = [checkpoint.traced for checkpoint in self.checkpoints]
        return max(values) - min(values)

    def expected_writes(self) -> list[tuple[int, int]]:
        """(requested, acknowledged) of every write the schedule makes."""
        count = int(self.simulated_hours * HOUR) // WRITE_EVERY
        return [(n % 5, n % 5) for n in range(count)]

    def expected_drops(self) -> list[str]:
        """The drops the schedule injects, in order."""
        end = int(self.simulated_hours * HOUR)
        return [
            kind
            for hour in range(end // HOUR + 1)
            for second, kind in DROPS
            if hour * HOUR + second <= end
        ]

    def problems(self) -> list[str]:
        """Expectations the run did not meet (none: it passed)."""
        found = []
        if self.writes != self.expected_writes():
            found.append(f"writes {self.writes} != {self.expected_writes()}")
        if self.misplaced_writes or self.accepted_writes != len(self.writes):
            found.append(f"the controller accepted {self.accepted_writes} writes")
        if self.drops != self.expected_drops() or self.reconnects != len(self.drops):
            found.append(f"{self.reconnects} reconnects for the drops {self.drops}")
        if len(self.tasks) != 1:
            found.append(f"the number of asyncio tasks changed: {sorted(self.tasks)}")
        if self.memory_growth > GROWTH_LIMIT:
            found.append(f"memory grew by {self.memory_growth} bytes")
        if self.warnings:
            found.append(f"the library logged {len(self.warnings)} warnings: {self.warnings[:3]}")
        return found

    def lines(self) -> list[str]:
        """The report as text."""
        first, last = self.checkpoints[0], self.checkpoints[-1]
        rate = self.frames / self.wall_seconds if self.wall_seconds else 0.0
        return [
            f"simulated time      {self.simulated_hours:g} h ({self.cycles} header sets)",
            (
                f"wall time           {self.wall_seconds:.1f} s "
                f"({self.simulated_hours * HOUR / self.wall_seconds:.0f} × real time)"
            ),
            (
                f"frames              {self.frames} ({rate:.0f}/s): {self.packets} packets "
                f"({self.packets_decoded} decoded), {self.datagrams} datagrams; {self.bytes} bytes"
            ),
            f"checksum errors     {self.checksum_errors} (injected bit errors)",
            (
                f"writes              {len(self.writes)}, all acknowledged: "
                f"{all(r == a for r, a in self.writes)}"
            ),
            f"drops injected      {len(self.drops)} ({', '.join(sorted(set(self.drops)))})",
            f"reconnects          {self.reconnects}",
            f"asyncio tasks       {sorted(self.tasks)} at {len(self.checkpoints)} checkpoints",
            (
                f"traced memory       {first.traced / 1024:.1f} KiB after warm-up, "
                f"{last.traced / 1024:.1f} KiB at the end: growth "
                f"{self.memory_growth / 1024:+.1f} KiB, spread {self.memory_spread / 1024:.1f} KiB"
            ),
            *(f"  {line}" for line in self.top_growth),
        ]


class _Collector(logging.Handler):
    """Keeps the messages of log records at WARNING and above."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class Soak:
    """One soak run (see the module docs)."""

    def __init__(self, recordings: Sequence[Path], hours: float, trace_frames: int) -> None:
        if hours * HOUR < WARM_UP + 600:
            msg = f"a soak needs at least {(WARM_UP + 600) / HOUR:g} simulated hours"
            raise ValueError(msg)
        self.hours = hours
        self.trace_frames = trace_frames
        self.sim = SimulatedClock()
        self.source = TimedSource(RecordingSource(live_recording(recordings), channel=1), self.sim)
        self.emulator = Emulator(
            personality=Personality.DL2,
            password=PASSWORD,
            channels={1: self.source},
            offer_interval=None,  # the soak offers the bus when it wants to write
            speed=1e9,
        )
        self.spec = Specification.bundled()
        self.latest: dict[tuple[int, int, int], tuple[object, ...]] = {}
        self.report = SoakReport(simulated_hours=hours)
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._baseline: tracemalloc.Snapshot | None = None
        self._packets = self._decoded = self._datagrams = 0

    # -- the client side, as the integration runs it ---------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        if isinstance(frame, Packet):
            self._packets += 1
            decoder = self.spec.decoder_for(frame)
            if decoder is not None:
                key = (frame.destination, frame.source, frame.command)
                self.latest[key] = decoder.decode(frame.frame_data)
                self._decoded += 1
        else:
            self._datagrams += 1

    def _on_state(self, state: SessionState, _reason: BaseException | None) -> None:
        self.report.states.append(state.value)
        if state == SessionState.CONNECTED:
            self._connected.set()
        elif state == SessionState.DISCONNECTED:
            # The fault did its work: switch it off before the session reconnects.
            faults = self.emulator.faults
            faults.silent = faults.cut_mid_frame = faults.hard_close = False
            faults.drop_after_bytes = None
            self._disconnected.set()

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> SoakReport:
        started = time.perf_counter()
        library = logging.getLogger("aiovbus")
        handler = _Collector(self.report.warnings)
        library.addHandler(handler)
        try:
            await self._run()
        finally:
            library.removeHandler(handler)
        self.report.wall_seconds = time.perf_counter() - started
        return self.report

    async def _run(self) -> None:
        async with self.emulator:
            session = VBusSession(
                ConnectionConfig(host="127.0.0.1", port=self.emulator.port, password=PASSWORD),
                clock=self.sim.clock,
                sleep=self.sim.sleep,
            )
            session.subscribe(self._on_frame)
            session.add_state_listener(self._on_state)
            engine = ParameterEngine(session)
            session.start()
            try:
                await session.wait_connected()
                await self._schedule(session, engine)
            finally:
                await engine.close()
                await session.stop()

    def _events(self) -> list[tuple[int, int, str]]:
        """(second, order, kind) of every write, drop and corruption, in time order."""
        events = []
        for hour in range(int(self.hours * HOUR) // HOUR + 1):
            base = hour * HOUR
            events += [(base + second, 1, "write") for second in range(0, HOUR, WRITE_EVERY)]
            events += [(base + second, 2, kind) for second, kind in DROPS]
            events += [(base + CORRUPTION[0], 0, "corrupt"), (base + CORRUPTION[1], 0, "clean")]
        end = int(self.hours * HOUR)
        return sorted(event for event in events if 0 < event[0] <= end)

    async def _schedule(self, session: VBusSession, engine: ParameterEngine) -> None:
        checkpoints = [WARM_UP + i * 600 for i in range(int(self.hours * HOUR) // 600 + 1)]
        checkpoints = [c for c in checkpoints if c <= self.hours * HOUR]
        tracemalloc.start(self.trace_frames)
        try:
            # Checkpoints come first at their second: no write is in flight then.
            timeline = sorted(
                [*self._events(), *((second, -1, "checkpoint") for second in checkpoints)]
            )
            written = 0
            for second, _order, kind in timeline:
                await self.sim.until(second)
                if kind == "write":
                    await self._write(engine, written % 5)
                    written += 1
                elif kind == "checkpoint":
                    self._checkpoint(second)
                elif kind == "corrupt":
                    self.emulator.faults.corrupt_every = 97
                elif kind == "clean":
                    self.emulator.faults.corrupt_every = None
                else:
                    await self._drop(kind)
            report = self.report
            report.top_growth = self._top_growth()
            self._tally_writes()
            report.cycles = self.source.cycles_sent
            report.packets, report.datagrams = self._packets, self._datagrams
            report.packets_decoded = self._decoded
            stats = session.stats
            report.frames, report.bytes = stats.frames, stats.bytes
            report.checksum_errors = stats.checksum_errors
            report.connects, report.reconnects = session.connects, session.reconnects
        finally:
            tracemalloc.stop()

    async def _write(self, engine: ParameterEngine, value: int) -> None:
        # Offer the bus now (a real controller does every second); the engine takes an offer
        # that arrived a moment before the write as well.
        assert self.emulator.controller(1).offer_bus()
        result = await engine.set(MX, value, id_hash=value_id_hash(VALUE_ID), minimum=0, maximum=4)
        self.report.writes.append((value, result.value))

    async def _drop(self, kind: str) -> None:
        # A write returns with the controller's answer; the engine gives the bus back after
        # that. Cut before that and the controller holds the bus (silent) for its timeout.
        await self.emulator.controller(1).wait_for_master(None)
        self._connected.clear()
        self._disconnected.clear()
        faults = self.emulator.faults
        if kind == "reboot":
            await self.emulator.reboot()
        elif kind == "cut":
            (connection,) = self.emulator._connections  # the one client
            faults.cut_mid_frame = True
            faults.drop_after_bytes = connection.data_sent + 7
        elif kind == "silent":
            faults.silent = True
        else:
            faults.hard_close = True
            await self.emulator.reboot()
        await self._disconnected.wait()
        await self._connected.wait()
        self.report.drops.append(kind)

    def _checkpoint(self, second: int) -> None:
        # The emulated controller logs the datagrams it received and the writes it accepted;
        # the library decoded them, so with one traced frame their numbers would count as ours.
        # They are the device's memory: check the write log, then empty both.
        self.emulator.controller(1).received.clear()
        self._tally_writes()
        gc.collect()
        snapshot = self._snapshot()
        traced = sum(stat.size for stat in snapshot.statistics("filename"))
        tasks = len(asyncio.all_tasks())
        self.report.checkpoints.append(Checkpoint(second, traced, tasks))
        if len(self.report.checkpoints) == 1:
            self._baseline = snapshot

    def _tally_writes(self) -> None:
        """Count the writes the controller accepted and check they are the ones requested."""
        store = self.emulator.controller(1).store
        expected = [(store[VALUE_ID].index, requested) for requested, _ in self.report.writes]
        if store.writes != expected[len(expected) - len(store.writes) :]:
            self.report.misplaced_writes += 1
        self.report.accepted_writes += len(store.writes)
        store.writes.clear()

    def _snapshot(self) -> tracemalloc.Snapshot:
        filters = [
            tracemalloc.Filter(inclusive=False, filename_pattern=pattern, all_frames=True)
            for pattern in EXCLUDED
        ]
        return tracemalloc.take_snapshot().filter_traces(filters)

    def _top_growth(self, count: int = 3) -> list[str]:
        if self._baseline is None:
            return []
        gc.collect()
        stats = self._snapshot().compare_to(self._baseline, "lineno")
        return [str(stat) for stat in stats[:count]]


async def run_soak(
    recordings: Sequence[Path],
    hours: float,
    *,
    trace_frames: int = TRACE_FRAMES,
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Run a soak of ``hours`` simulated hours over ``recordings``."""
    report = await Soak(recordings, hours, trace_frames).run()
    if progress is not None:
        for line in report.lines():
            progress(line)
    return report
