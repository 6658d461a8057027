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

Imports of the integration stay inside the functions: B4 runs first and measures them.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

# Only the (empty) top package: Home Assistant's loader then finds the integration here, not in
# the harness's testing_config. The integration's own modules are imported by B4, measured.
import custom_components  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Iterator

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


async def setup_mx(hass: HomeAssistant, port: int, kinds: int) -> MockConfigEntry:
    """Set up an entry for the emulated DL3 (channel 1), wait until it knows ``kinds`` packets."""
    from pytest_homeassistant_custom_component.common import MockConfigEntry  # noqa: PLC0415

    from tests.common import entry_data, wait_for_packets  # noqa: PLC0415

    entry = MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via DL3 channel 1",
        unique_id=UNIQUE_ID,
        data=entry_data(port, channel=1, serial="001E66E7A003", product="DL3"),
    )
    entry.add_to_hass(hass)
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


def visible_changes(
    stream: list[Any], entity_by_unique_id: dict[str, str], initial: list[Any]
) -> Counter[str]:
    """Per enabled entity: how often what it shows changes along ``stream`` (after ``initial``)."""
    from custom_components.resol_vbus.vbus.blocktype import is_block_packet  # noqa: PLC0415
    from custom_components.resol_vbus.vbus.specification import Specification  # noqa: PLC0415
    from tests.common import shown  # noqa: PLC0415 - the same oracle as the state-write test

    spec = Specification.bundled()
    changes: Counter[str] = Counter()
    last: dict[str, object] = {}
    last_data: dict[str, bytes] = {}
    for index, packet in enumerate([*initial, *stream]):
        decoder = spec.decoder_for(packet)
        if decoder is None or is_block_packet(packet):
            continue
        if last_data.get(packet.packet_id) == packet.frame_data:
            continue  # the same bytes show the same values
        last_data[packet.packet_id] = packet.frame_data
        values = decoder.decode(packet.frame_data)
        for spec_field, value in zip(decoder.fields, values, strict=True):
            entity = entity_by_unique_id.get(
                f"{UNIQUE_ID}_{packet.packet_id}_{spec_field.field_id}"
            )
            if entity is None:
                continue
            now = shown(spec_field, value)
            if index >= len(initial) and entity in last and last[entity] != now:
                changes[entity] += 1
            last[entity] = now
    return changes


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
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
            figures["profile_top"] = text.getvalue()
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
