"""Benchmarks in a Home Assistant test instance: B4 setup memory and B2 coordinator cost.

Not tests: ``scripts/bench`` runs this file with pytest (for the Home Assistant fixtures of
pytest-homeassistant-custom-component) and sets ``BENCH_OUT`` to the JSON file the figures go
to; without it every benchmark is skipped. ``scripts/test`` never collects it (``testpaths`` is
``tests``). Needs ``../shared/reference/data/recordings``.

* **B4 memory**: what tracemalloc sees allocated and still held (a) by importing the
  integration's modules and (b) by setting up its config entry, entities included, with a full
  DeltaSol MX system on the bus (the first header set of ``20140214_packets.vbus``: controller,
  modules, heating circuit, heat quantity meters). Home Assistant's own entity platforms are set
  up beforehand: every installation has them.
* **B2 coordinator cost**: the day's packets go through the real coordinator
  (``_handle_frame``) and entities, without sleeping: the coordinator's clock is advanced
  artificially. Twice: at the recording's pace (a header set every 5 minutes, so nearly every
  packet carries new values: the worst case), and at the bus's own pace of one packet of each
  kind per second (each header set resent unchanged for the 5 minutes until the next one).
  Figures: CPU µs per packet (``time.process_time``, event dispatch included), state writes,
  real value changes (what an entity shows changed, computed independently of the entity code)
  and redundant writes.
* **B2 demo system**: what ``scripts/develop`` shows, the emulator's moving DeltaSol MX system
  (``SyntheticSource``: values and the controller clock change every second), one cycle of its
  five packets per second for 24 simulated hours (3 with ``--quick``, scaled to a day), through
  the real coordinator and entities, with the entities a user gets by default (settings
  included: the emulated controller answers parameter reads) plus the clock deviation, which is
  disabled by default and counted apart. Home Assistant's time as the deviation reads it
  (``sensor.now``) advances with the controller's clock. Figures: ``state_changed`` events per
  day (one recorder row each in the ``states`` table; ``state_reported`` events are not
  recorded) in total, by entity kind and for the top entities; what the controller clock cost
  before, as a timestamp sensor with a state each second (computed from the packets, not from old
  code); whether a re-read of the settings (every 10 minutes) writes a row.

Imports of the integration stay inside the functions: B4 runs first and measures them.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import importlib
import io
import json
import os
import pstats
import sys
import sysconfig
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util

# Only the (empty) top package: Home Assistant's loader then finds the integration here, not in
# the harness's testing_config. The integration's own modules are imported by B4, measured.
import custom_components  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pytest_homeassistant_custom_component.common import MockConfigEntry

OUT = os.environ.get("BENCH_OUT")
QUICK = os.environ.get("BENCH_QUICK") == "1"
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT.parent / "shared" / "reference" / "data" / "recordings" / "20140214_packets.vbus"
UNIQUE_ID = "001E66E7A003-1"
DOMAIN = "resol_vbus"
#: Hours of the day replayed at one packet per second (all 24 unless --quick).
PER_SECOND_HOURS = 3 if QUICK else 24
#: Simulated hours of the demo system (all 24 unless --quick), from midnight in Home Assistant's
#: time zone on a day without a daylight-saving change.
DEMO_HOURS = 3 if QUICK else 24
DEMO_START = datetime(2026, 6, 21)  # noqa: DTZ001 - Home Assistant's time zone is added
#: Cycles generated (and then fed, timed) at a time.
DEMO_CHUNK = 3600

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(not OUT, reason="a benchmark: run it with scripts/bench"),
    pytest.mark.usefixtures("socket_enabled"),
]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components/."""


def record(section: str, figures: dict[str, Any]) -> None:
    """Merge ``figures`` into the JSON file ``BENCH_OUT`` under ``section``."""
    assert OUT is not None  # noqa: S101 - the module is skipped without it
    path = Path(OUT)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[section] = figures
    path.write_text(json.dumps(data, indent=2) + "\n")


def header_sets() -> list[tuple[float, list[Any]]]:
    """The recording's channel-1 packets by header set, with the set's time in seconds."""
    from custom_components.resol_vbus.vbus.protocol import Packet  # noqa: PLC0415
    from custom_components.resol_vbus.vbus.recording import (  # noqa: PLC0415
        HeaderSetStart,
        RecordedFrame,
        read_recording,
    )

    if not RECORDING.is_file():
        pytest.skip(f"{RECORDING} is needed")
    sets: list[tuple[float, list[Any]]] = []
    for item in read_recording(RECORDING.read_bytes()):
        if isinstance(item, HeaderSetStart):
            sets.append((item.timestamp / 1000, []))
        elif (
            isinstance(item, RecordedFrame)
            and isinstance(item.frame, Packet)
            and item.frame.channel == 1
            and sets
        ):
            sets[-1][1].append(item.frame)
    return [s for s in sets if s[1]]


def kinds_of(header_set: list[Any]) -> int:
    """How many kinds of packets the coordinator learns from ``header_set``."""
    from custom_components.resol_vbus.vbus.blocktype import is_block_packet  # noqa: PLC0415

    return len({(p.destination, p.source, p.command) for p in header_set if not is_block_packet(p)})


async def setup_mx(
    hass: HomeAssistant, port: int, kinds: int, enable: Iterable[str] = ()
) -> MockConfigEntry:
    """Set up an entry for the emulated DL3 (channel 1), wait until it knows ``kinds`` packets.

    The sensors with the unique IDs ``enable`` are enabled beforehand (as a user would enable
    them), whether they are enabled by default or not.
    """
    from pytest_homeassistant_custom_component.common import MockConfigEntry  # noqa: PLC0415

    from tests.common import entry_data, wait_for_packets  # noqa: PLC0415

    entry = MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via DL3 channel 1",
        unique_id=UNIQUE_ID,
        data=entry_data(port, channel=1, serial="001E66E7A003", product="DL3"),
    )
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    for unique_id in enable:
        registry.async_get_or_create("sensor", DOMAIN, unique_id, config_entry=entry)
    assert await hass.config_entries.async_setup(entry.entry_id)  # noqa: S101
    await wait_for_packets(entry.runtime_data, kinds)
    await hass.async_block_till_done()
    return entry


def mx_emulator(first_set: list[Any]) -> Any:
    """A DL3 whose channel 1 sends the first header set once (no bus offers)."""
    from custom_components.resol_vbus.vbus.emulator import (  # noqa: PLC0415
        Emulator,
        Personality,
        StaticSource,
    )

    return Emulator(
        personality=Personality.DL3, channels={1: StaticSource(*first_set)}, offer_interval=None
    )


def top_allocations(snapshot: tracemalloc.Snapshot, count: int) -> list[dict[str, Any]]:
    """The files that hold the most of what was allocated, relative to the repository."""
    stats = snapshot.statistics("filename")[:count]
    rows = []
    for stat in stats:
        name = stat.traceback[0].filename
        for prefix in (sysconfig.get_path("purelib"), sysconfig.get_path("stdlib"), str(ROOT)):
            name = name.removeprefix(prefix + os.sep)
        rows.append({"file": name, "kib": round(stat.size / 1024, 1)})
    return rows


async def test_b4_setup_memory(hass: HomeAssistant) -> None:
    """B4: memory added by the integration's modules and by its setup with a DeltaSol MX."""
    modules_fresh = "custom_components.resol_vbus" not in sys.modules
    gc.collect()
    tracemalloc.start()
    integration = importlib.import_module("custom_components.resol_vbus")
    modules = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # Home Assistant's own entity platforms are loaded on every installation: not ours.
    for platform in integration.PLATFORMS:
        assert await async_setup_component(hass, str(platform), {})  # noqa: S101
    await hass.async_block_till_done()
    gc.collect()
    tracemalloc.start()
    for platform in integration.PLATFORMS:
        importlib.import_module(f"custom_components.resol_vbus.{platform}")
    modules += tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    from custom_components.resol_vbus.vbus import specification  # noqa: PLC0415

    importlib.import_module("tests.common")  # the benchmark's helpers, not counted
    first = header_sets()[0][1]
    kinds = kinds_of(first)
    async with mx_emulator(first) as emulator:
        specification._bundled.cache_clear()  # noqa: SLF001 - the setup loads it, counted
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        entry = await setup_mx(hass, emulator.port, kinds)
        seconds = time.perf_counter() - start
        gc.collect()
        setup, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        registry = er.async_get(hass)
        entities = er.async_entries_for_config_entry(registry, entry.entry_id)
        figures = {
            "added_mb": round((modules + setup) / 1e6, 2),
            "modules_mb": round(modules / 1e6, 2),
            "setup_mb": round(setup / 1e6, 2),
            "setup_peak_mb": round(peak / 1e6, 2),
            "setup_seconds_traced": round(seconds, 3),
            "modules_were_fresh": modules_fresh,
            "packet_kinds": len(entry.runtime_data.packets),
            "entities": len(entities),
            "entities_enabled": sum(1 for e in entities if not e.disabled_by),
            "top_files": top_allocations(snapshot, 8),
        }
        assert await hass.config_entries.async_unload(entry.entry_id)  # noqa: S101
    record("b4_memory", figures)


class WriteCounter:
    """Counts the state writes of the entry's enabled entities (one event per write)."""

    def __init__(self, hass: HomeAssistant, entity_ids: set[str]) -> None:
        """Listen to state_changed (a new state) and state_reported (an unchanged one)."""
        self.changed: Counter[str] = Counter()
        self.reported: Counter[str] = Counter()

        @callback
        def ours(data: dict[str, Any]) -> bool:
            return data["entity_id"] in entity_ids

        @callback
        def on_changed(event: Event) -> None:
            self.changed[event.data["entity_id"]] += 1

        @callback
        def on_reported(event: Event) -> None:
            self.reported[event.data["entity_id"]] += 1

        hass.bus.async_listen(EVENT_STATE_CHANGED, on_changed, event_filter=ours)
        hass.bus.async_listen(EVENT_STATE_REPORTED, on_reported, event_filter=ours)


class VisibleChanges:
    """Per entity: how often what it shows changes along a stream of packets.

    Worked out from the decoded values with the same oracle as the state-write test, not with
    the entity code. ``entity_by_unique_id`` names the entities of interest; packets are fed
    one at a time (:meth:`feed`), so a day of them need not be held in memory.
    """

    def __init__(self, entity_by_unique_id: dict[str, str]) -> None:
        """Count the changes of the entities of ``entity_by_unique_id``."""
        from custom_components.resol_vbus.vbus.specification import (  # noqa: PLC0415
            Specification,
        )

        self.spec = Specification.bundled()
        self.entities = entity_by_unique_id
        self.changes: Counter[str] = Counter()
        self._last: dict[str, object] = {}
        self._last_raw: dict[str, object] = {}
        self._last_data: dict[str, bytes] = {}
        # Per packet id: its decoder and the (index, field, entity) it has entities for.
        self._fields: dict[str, tuple[Any, list[tuple[int, Any, str]]] | None] = {}

    def _packet_fields(self, packet: Any) -> tuple[Any, list[tuple[int, Any, str]]] | None:
        from custom_components.resol_vbus.vbus.blocktype import (  # noqa: PLC0415
            is_block_packet,
        )

        packet_id = packet.packet_id
        if packet_id not in self._fields:
            decoder = self.spec.decoder_for(packet)
            if decoder is None or is_block_packet(packet):
                self._fields[packet_id] = None
            else:
                prefix = f"{UNIQUE_ID}_{packet_id}_"
                self._fields[packet_id] = (decoder, [
                    (index, spec_field, entity)
                    for index, spec_field in enumerate(decoder.fields)
                    if (entity := self.entities.get(prefix + spec_field.field_id)) is not None
                ])  # fmt: skip
        return self._fields[packet_id]

    def feed(self, packet: Any, *, count: bool = True) -> None:
        """The next packet; its changes count unless ``count`` is false (the initial values)."""
        from tests.common import shown  # noqa: PLC0415 - the same oracle as the state-write test

        known = self._packet_fields(packet)
        if known is None or self._last_data.get(packet.packet_id) == packet.frame_data:
            return  # the same bytes show the same values
        self._last_data[packet.packet_id] = packet.frame_data
        decoder, fields = known
        values = decoder.decode(packet.frame_data)
        last, last_raw = self._last, self._last_raw
        for index, spec_field, entity in fields:
            value = values[index]
            if entity in last_raw and last_raw[entity] == value:
                continue  # the same value shows the same
            last_raw[entity] = value
            now = shown(spec_field, value)
            if count and entity in last and last[entity] != now:
                self.changes[entity] += 1
            last[entity] = now


def visible_changes(
    stream: list[Any], entity_by_unique_id: dict[str, str], initial: list[Any]
) -> Counter[str]:
    """Per enabled entity: how often what it shows changes along ``stream`` (after ``initial``)."""
    oracle = VisibleChanges(entity_by_unique_id)
    for packet in initial:
        oracle.feed(packet, count=False)
    for packet in stream:
        oracle.feed(packet)
    return oracle.changes


def per_second(sets: list[tuple[float, list[Any]]], hours: float) -> Iterator[tuple[float, Any]]:
    """(seconds since the start, packet) pairs: every packet kind once per second.

    Each header set is held until the next one (the recording's 5-minute spacing); the last one
    is held as long as the others.
    """
    start = sets[0][0]
    limit = hours * 3600
    for number, (time_s, packets) in enumerate(sets):
        following = sets[number + 1][0] if number + 1 < len(sets) else time_s + 300
        offset = round(time_s - start)
        for second in range(offset, min(round(following - start), round(limit))):
            for packet in packets:
                yield float(second), packet


def _profile_text(profiler: cProfile.Profile) -> str:
    """The top functions of ``profiler`` by own time."""
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    return text.getvalue()


async def replay(
    hass: HomeAssistant, stream: list[tuple[float, Any]], replayed_seconds: float, passes: int = 1
) -> dict[str, Any]:
    """Feed ``stream`` ((seconds, packet) pairs) through the coordinator ``passes`` times.

    The CPU time of the fastest pass counts (the machine may be busy with other things); state
    writes and value changes are those of all passes.
    """
    sets = header_sets()
    first = sets[0][1]
    async with mx_emulator(first) as emulator:
        entry = await setup_mx(hass, emulator.port, kinds_of(first))
        coordinator = entry.runtime_data
        registry = er.async_get(hass)
        entity_by_unique_id = {
            e.unique_id: e.entity_id
            for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            if not e.disabled_by
        }
        counter = WriteCounter(hass, set(entity_by_unique_id.values()))
        clock = [time.monotonic()]
        origin = clock[0] + 1.0
        coordinator._clock = lambda: clock[0]  # noqa: SLF001
        handle = coordinator._handle_frame  # noqa: SLF001
        profiler = cProfile.Profile() if PROFILE else None
        times: list[tuple[float, float]] = []
        for number in range(passes):
            base = origin + number * replayed_seconds
            gc.collect()
            if profiler:
                profiler.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            for seconds, packet in stream:
                clock[0] = base + seconds
                handle(packet)
            await hass.async_block_till_done()
            times.append((time.process_time() - cpu, time.perf_counter() - wall))
            if profiler:
                profiler.disable()
        cpu, wall = min(times)
        replayed_seconds *= passes
        expected = visible_changes([p for _, p in stream] * passes, entity_by_unique_id, first)
        writes = counter.changed + counter.reported
        redundant = sum(max(0, writes[e] - expected[e]) for e in writes)
        missed = sum(max(0, expected[e] - counter.changed[e]) for e in expected)
        hours = replayed_seconds / 3600
        figures: dict[str, Any] = {
            "packets": len(stream),
            "passes": passes,
            "replayed_hours": round(hours, 2),
            "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(wall, 3),
            "cpu_us_per_packet": round(cpu / len(stream) * 1e6, 2),
            "cpu_us_per_packet_each_pass": [round(c / len(stream) * 1e6, 2) for c, _ in times],
            "state_writes": writes.total(),
            "state_writes_per_hour": round(writes.total() / hours, 1),
            "real_value_changes": expected.total(),
            "real_value_changes_per_hour": round(expected.total() / hours, 1),
            "redundant_writes": redundant,
            "state_reported_events": counter.reported.total(),
            "missed_changes": missed,
            "entities_enabled": len(entity_by_unique_id),
        }
        if profiler:
            figures["profile_top"] = _profile_text(profiler)
        assert await hass.config_entries.async_unload(entry.entry_id)  # noqa: S101
    return figures


async def test_b2_recording_pace(hass: HomeAssistant) -> None:
    """B2 worst case: a header set every 5 minutes, nearly every packet carries new values."""
    sets = header_sets()
    start = sets[0][0]
    stream = [(time_s - start, packet) for time_s, packets in sets for packet in packets]
    replayed = sets[-1][0] - start + 300
    record("b2_recording_pace", await replay(hass, stream, replayed, 3 if QUICK else 5))


async def test_b2_one_packet_per_second(hass: HomeAssistant) -> None:
    """B2 as on the bus: every packet kind once per second, mostly unchanged."""
    sets = header_sets()
    stream = list(per_second(sets, PER_SECOND_HOURS))
    replayed = stream[-1][0] + 1
    record("b2_per_second", await replay(hass, stream, replayed))


# -- B2 for the demo system -----------------------------------------------------------------------


def entity_kind(entry: er.RegistryEntry) -> str:
    """How a user tells entities apart: platform and device class ("sensor/temperature").

    Sensors without a device class are told apart by their unit ("sensor/none (%)"); the
    controller's settings (select, number, switch, button) by their platform.
    """
    if entry.entity_category == "config":
        return f"{entry.domain} (setting)"
    device_class = entry.device_class or entry.original_device_class
    if device_class:
        return f"{entry.domain}/{device_class}"
    unit = entry.unit_of_measurement
    return f"{entry.domain}/none ({unit})" if unit else f"{entry.domain}/none"


def demo_cycles(start: datetime) -> Iterator[list[Any]]:
    """The demo system's packets (channel 1), one list per simulated second from ``start``."""
    from custom_components.resol_vbus.vbus.emulator import SyntheticSource  # noqa: PLC0415
    from custom_components.resol_vbus.vbus.protocol import Packet, decode_frame  # noqa: PLC0415

    for cycle in SyntheticSource(start=start).cycles():
        yield [p for u in cycle.units if isinstance(p := decode_frame(u, 1), Packet)]


def clock_unique_ids(packets: list[Any]) -> dict[str, str]:
    """The unique IDs of the clock fields of ``packets``: the field's own and its deviation's."""
    from custom_components.resol_vbus.names import DEVIATION_SUFFIX  # noqa: PLC0415
    from custom_components.resol_vbus.vbus.specification import Specification  # noqa: PLC0415
    from custom_components.resol_vbus.vbus.units import is_clock  # noqa: PLC0415

    spec = Specification.bundled()
    found = {}
    for packet in packets:
        decoder = spec.decoder_for(packet)
        for spec_field in decoder.fields if decoder else ():
            if is_clock(spec_field):
                unique_id = f"{UNIQUE_ID}_{packet.packet_id}_{spec_field.field_id}"
                found[unique_id] = unique_id + DEVIATION_SUFFIX
    return found


async def wait_for_settings(entry: MockConfigEntry) -> None:
    """Wait until the controller's settings are read (their entities are added then)."""
    read = asyncio.Event()
    remove = entry.runtime_data.values.async_add_controller_callback(lambda _values: read.set())
    try:
        async with asyncio.timeout(30):
            await read.wait()
    finally:
        remove()


def per_day(count: float, seconds: float) -> float:
    """``count`` in ``seconds`` of simulated time, as a count per day."""
    return round(count * 86400 / seconds, 1)


async def demo_replay(hass: HomeAssistant, hours: float) -> dict[str, Any]:
    """Feed ``hours`` of the demo system, a cycle a second, through the coordinator."""
    from custom_components.resol_vbus import sensor  # noqa: PLC0415
    from custom_components.resol_vbus.vbus.emulator import (  # noqa: PLC0415
        Emulator,
        Personality,
        StaticSource,
    )

    start = DEMO_START.replace(tzinfo=dt_util.get_default_time_zone())
    cycles = demo_cycles(start)
    first = next(cycles)
    clocks = clock_unique_ids(first)
    # Home Assistant's time as the clock deviation reads it, in step with the controller's.
    clock = [time.monotonic()]
    origin = clock[0]
    with patch.object(sensor, "now", lambda: start + timedelta(seconds=clock[0] - origin)):
        # The first cycle once, so the entry knows the system; the controller offers the bus, so
        # its settings are read and get their entities, as in the demo.
        async with Emulator(
            personality=Personality.DL3, channels={1: StaticSource(*first)}, offer_interval=1.0
        ) as emulator:
            entry = await setup_mx(hass, emulator.port, len(first), enable=clocks.values())
            await wait_for_settings(entry)
            await hass.async_block_till_done()
            figures = await _demo_replay(hass, entry, cycles, hours, (first, clocks, clock))
            assert await hass.config_entries.async_unload(entry.entry_id)  # noqa: S101
    return figures


async def _demo_replay(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    cycles: Iterator[list[Any]],
    hours: float,
    context: tuple[list[Any], dict[str, str], list[float]],
) -> dict[str, Any]:
    first, clocks, clock = context
    coordinator = entry.runtime_data
    registry = er.async_get(hass)
    entries = {
        e.entity_id: e
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if not e.disabled_by
    }
    counter = WriteCounter(hass, set(entries))
    # The oracle: what the sensors and binary sensors show, and the clock field itself (what a
    # timestamp sensor of it would show).
    oracle = VisibleChanges(
        {e.unique_id: e.entity_id for e in entries.values()} | {c: c for c in clocks}
    )
    for packet in first:
        oracle.feed(packet, count=False)
    origin = clock[0]
    coordinator._clock = lambda: clock[0]  # noqa: SLF001
    handle = coordinator._handle_frame  # noqa: SLF001
    profiler = cProfile.Profile() if PROFILE else None
    seconds = round(hours * 3600)
    cpu = wall = 0.0
    packets = done = 0
    while done < seconds:
        chunk = [next(cycles) for _ in range(min(DEMO_CHUNK, seconds - done))]
        gc.collect()
        if profiler:
            profiler.enable()
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        for number, cycle in enumerate(chunk, done + 1):
            clock[0] = origin + number
            for packet in cycle:
                handle(packet)
        await hass.async_block_till_done()
        cpu += time.process_time() - started_cpu
        wall += time.perf_counter() - started_wall
        if profiler:
            profiler.disable()
        for cycle in chunk:
            packets += len(cycle)
            for packet in cycle:
                oracle.feed(packet)
        done += len(chunk)
    writes = DemoWrites(
        entries,
        {e.entity_id for e in entries.values() if e.unique_id in clocks.values()},
        counter.changed.copy(),
        counter.reported.copy(),
        oracle.changes,
    )
    figures = writes.figures(hass, seconds, sum(oracle.changes[c] for c in clocks))
    # A re-read of the settings (every 10 minutes): their values did not change.
    settings = {e for e, r in entries.items() if entity_kind(r).endswith("(setting)")}
    before = sum(counter.changed[e] for e in settings), sum(counter.reported[e] for e in settings)
    for values in coordinator.values.controllers.values():
        await values.async_refresh()
    await hass.async_block_till_done()
    return figures | {
        "packets": packets,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "cpu_us_per_packet": round(cpu / packets * 1e6, 2),
        "settings": len(settings),
        "settings_reread_state_changed": sum(counter.changed[e] for e in settings) - before[0],
        "settings_reread_state_reported": sum(counter.reported[e] for e in settings) - before[1],
        **({"profile_top": _profile_text(profiler)} if profiler else {}),
    }


@dataclass
class DemoWrites:
    """The state writes of a demo replay: ``changed`` per entity, ``reported`` in all.

    ``entries`` are the enabled entities, ``opt_in`` those of them a user would have to enable
    (the clock deviation), ``expected`` the oracle's changes per entity.
    """

    entries: dict[str, er.RegistryEntry]
    opt_in: set[str]
    changed: Counter[str]
    reported: Counter[str]
    expected: Counter[str]

    def figures(self, hass: HomeAssistant, seconds: int, clock_changes: int) -> dict[str, Any]:
        """Rows per day in total, by kind and of the top entities; the clock, now and before.

        ``clock_changes``: how often the clock field changed (a row each, as a timestamp).
        """
        changed, expected = self.changed, self.expected
        default = {e: r for e, r in self.entries.items() if e not in self.opt_in}
        kinds: dict[str, dict[str, Any]] = {}
        for entity_id, entry in sorted(default.items()):
            kind = kinds.setdefault(entity_kind(entry), {"entities": 0, "rows": 0})
            kind["entities"] += 1
            kind["rows"] += changed[entity_id]
        by_kind = {
            name: {"entities": kind["entities"], "rows_per_day": per_day(kind["rows"], seconds)}
            for name, kind in sorted(kinds.items(), key=lambda k: (-k[1]["rows"], k[0]))
        }
        total = sum(changed[e] for e in default)

        def row(entity_id: str) -> dict[str, Any]:
            state = hass.states.get(entity_id)
            return {
                "entity_id": entity_id,
                "name": state.attributes.get("friendly_name", entity_id) if state else entity_id,
                "kind": entity_kind(self.entries[entity_id]),
                "rows_per_day": per_day(changed[entity_id], seconds),
            }

        return {
            "simulated_hours": round(seconds / 3600, 2),
            "cycles": seconds,
            "entities_enabled": len(default),
            "state_changed": total,
            "rows_per_day": per_day(total, seconds),
            "state_reported": self.reported.total(),
            "state_reported_by": dict(self.reported),
            # Writes the shown values do not explain, and changes not written (every enabled
            # entity: those without a field, such as the settings, should not write at all).
            "redundant_writes": sum(max(0, changed[e] - expected[e]) for e in self.entries),
            "missed_changes": sum(max(0, expected[e] - changed[e]) for e in self.entries),
            "by_kind": by_kind,
            "top_entities": [row(e) for e in sorted(default, key=lambda e: (-changed[e], e))[:5]],
            "opt_in": [row(e) for e in sorted(self.opt_in)],
            # Before: the clock field as a timestamp sensor, enabled by default, a row per change.
            "clock_timestamp_rows_per_day_before": per_day(clock_changes, seconds),
            "rows_per_day_before": per_day(total + clock_changes, seconds),
        }


async def test_b2_demo_system(hass: HomeAssistant) -> None:
    """B2 for the demo system: recorder rows per day by entity kind, a cycle a second."""
    record("b2_demo", await demo_replay(hass, DEMO_HOURS))
