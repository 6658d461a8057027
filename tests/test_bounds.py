"""Bounds on what the bus can make an entry create, against forged addresses.

Wildcard templates match whole address ranges: a source mask of 0x0000 (the module broadcasts,
command 0x0200), source masks such as 0xFFF0 (heat quantity meters, heating circuit modules) and
a destination mask of 0x0000. Frames with random addresses from those ranges are fed to the
coordinator of an entry set up against the emulator, twice each, more than a bound allows.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.coordinator import (
    MAX_DEVICES,
    MAX_ENTITIES,
    MAX_PACKET_KINDS,
    MAX_UNKNOWN_PACKETS,
    Bound,
    PacketKey,
)
from custom_components.resol_vbus.diagnostics import async_get_config_entry_diagnostics
from custom_components.resol_vbus.vbus.parameters import MAX_OFFERERS, EngineLimit
from custom_components.resol_vbus.vbus.protocol import BROADCAST, CMD_OFFER, Datagram, Packet
from custom_components.resol_vbus.vbus.specification import PacketTemplate, Specification

from .common import UNIQUE_ID, mx_controller

SPEC = Specification.bundled()
TRANSLATIONS = Path(__file__).parents[1] / "custom_components" / DOMAIN / "translations"
TEMPERATURE = f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0"
# What init_integration knows: the MX controller (62 fields) and its HQM #1 (9 fields).
KNOWN_KINDS = 2
KNOWN_FIELDS = 62 + 9


def source_range_templates(max_fields: int) -> list[PacketTemplate]:
    """Templates for a range of sources (mask 0xFFF0, 0xFFFE, 0xFFFC) to one destination."""
    every = [SPEC.packet_template_at(i) for i in range(SPEC.packet_template_count)]
    return [
        t
        for t in every
        if t.destination_mask == 0xFFFF
        and t.source_mask not in (0x0000, 0xFFFF)
        and len(t.fields) <= max_fields
    ]


def template(destination: int, source: int, command: int) -> PacketTemplate:
    found = SPEC.find_template(destination, source, command)
    assert found is not None
    return found


def forge(
    rng: random.Random, chosen: list[PacketTemplate], count: int, *, own_sources: bool
) -> list[Packet]:
    """``count`` packets of new kinds, each from random addresses that one of ``chosen`` matches.

    With ``own_sources``, each comes from a device (source address) of its own.
    """
    known = {(0x0010, 0x7E11), (0x0010, 0x7E31)}
    sources = {0x7E11, 0x7E31}
    packets: list[Packet] = []
    while len(packets) < count:
        t = rng.choice(chosen)
        destination = t.destination & t.destination_mask | rng.getrandbits(16) & ~t.destination_mask
        source = t.source & t.source_mask | rng.getrandbits(16) & ~t.source_mask
        if (destination, source) in known or (own_sources and source in sources):
            continue
        if SPEC.find_template(destination, source, t.command) is not t:
            continue  # an earlier template matches these addresses first
        known.add((destination, source))
        sources.add(source)
        payload = rng.randbytes(4 * rng.randint(0, 127))
        packets.append(Packet(destination, source, t.command, payload))
    return packets


def fields_of(packets: list[Packet]) -> int:
    return sum(len(SPEC.find_template(p.destination, p.source, p.command).fields) for p in packets)


@dataclass(frozen=True)
class Flood:
    """Forged kinds from wildcard templates and the bound they run into first."""

    templates: list[PacketTemplate]
    bound: Bound
    count: int

    @property
    def admitted(self) -> int:
        """How many of the forged kinds fit (the first ones fed), worked out for the bound."""
        if self.bound is Bound.PACKET_KINDS:
            return MAX_PACKET_KINDS - KNOWN_KINDS
        if self.bound is Bound.DEVICES:  # every forged kind comes from a device of its own
            return MAX_DEVICES - KNOWN_KINDS
        (single,) = self.templates
        return (MAX_ENTITIES - KNOWN_FIELDS) // len(single.fields)


FLOODS = {
    # Destination mask 0x0000, one source (Sensormodul Plus, 2 fields): one device, many kinds.
    "any destination, one source": Flood(
        [template(0x1234, 0x112E, 0x0101)], Bound.PACKET_KINDS, 2 * MAX_PACKET_KINDS
    ),
    # Destination mask 0x0000, sources 0x4010/0xFFF0 (HQM, 7 fields): 16 devices at most.
    "any destination, sixteen sources": Flood(
        [template(0x1234, 0x4011, 0x0100)], Bound.PACKET_KINDS, 2 * MAX_PACKET_KINDS
    ),
    # Source mask 0x0000 (to HCM1 #x, 9 fields): every kind a new device.
    "any source": Flood([template(0x4421, 0x1234, 0x0200)], Bound.DEVICES, 2 * MAX_DEVICES),
    # Source mask 0x0000 (to EM #x, 26 fields): the entities run out before the devices.
    "any source, large template": Flood(
        [template(0x6651, 0x1234, 0x0200)], Bound.ENTITIES, 2 * MAX_DEVICES
    ),
    # Source masks 0xFFF0, 0xFFFE, 0xFFFC to the DFA (HQMs, heating circuits, modules of many
    # controllers), those of at most 11 fields: 71 + 94 × 11 = 1105 entities fit, so the devices
    # run out first.
    "source ranges": Flood(
        source_range_templates(max_fields=11),
        Bound.DEVICES,
        2 * MAX_DEVICES,
    ),
}


WHAT = {
    Bound.PACKET_KINDS: "kinds of packets",
    Bound.DEVICES: "VBus devices",
    Bound.ENTITIES: "entities from VBus packets",
    Bound.UNKNOWN_PACKETS: "unknown kinds of packets kept for diagnostics",
}


def warning_text(bound: Bound, first_ignored: Packet) -> str:
    """The one warning when ``bound`` is reached, naming the first kind it keeps out."""
    name = SPEC.device_name(first_ignored.source, first_ignored.destination)
    return (
        f"RESOL VBus 127.0.0.1 reached its limit of {bound.limit} {WHAT[bound]}, so it ignores "
        f"new ones such as {name} (channel 0, {first_ignored.packet_id}). A faulty or foreign "
        "device on the bus, or interference, may be sending invalid addresses"
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.resol_vbus")
        and record.levelno >= logging.WARNING
    ]


def our_issues(hass: HomeAssistant) -> list[tuple[str, str | None, dict[str, str] | None]]:
    return [
        (issue.issue_id, issue.translation_key, issue.translation_placeholders)
        for issue in ir.async_get(hass).issues.values()
        if issue.domain == DOMAIN
        and issue.severity is ir.IssueSeverity.WARNING
        and not issue.is_fixable
    ]


def vbus_devices(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    """The model ids (source addresses) of the entry's VBus devices (the adapter has none)."""
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return {d.model_id for d in devices if d.model_id is not None}


def field_entities(hass: HomeAssistant, entry: MockConfigEntry) -> int:
    """The sensors and binary sensors of packet fields (not the adapter's connection sensor)."""
    return sum(
        1
        for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if entity.domain in ("sensor", "binary_sensor")
        and entity.unique_id != f"{entry.unique_id}_connection"
    )


async def assert_still_updates(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """The controller admitted before the flood still updates its entity."""
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, TEMPERATURE)
    assert entity_id is not None
    entry.runtime_data._handle_frame(mx_controller({"000_2_0": 3.3}))
    await hass.async_block_till_done()
    assert hass.states.get(entity_id).state == "3.3"
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("name", FLOODS)
async def test_forged_kinds_stop_at_their_bound(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    flood = FLOODS[name]
    coordinator = init_integration.runtime_data
    assert field_entities(hass, init_integration) == KNOWN_FIELDS
    own_sources = flood.bound is Bound.DEVICES
    packets = forge(random.Random(name), flood.templates, flood.count, own_sources=own_sources)
    admitted = flood.admitted
    assert admitted < len(packets)

    for packet in packets + packets:
        coordinator._handle_frame(packet)
    await hass.async_block_till_done()

    fitting = packets[:admitted]
    assert list(coordinator.packets)[KNOWN_KINDS:] == [
        PacketKey(0, p.destination, p.source, p.command) for p in fitting
    ]
    assert vbus_devices(hass, init_integration) == {
        f"0x{source:04X}" for source in {0x7E11, 0x7E31} | {p.source for p in fitting}
    }
    assert field_entities(hass, init_integration) == KNOWN_FIELDS + fields_of(fitting)
    assert len(coordinator.packets) <= MAX_PACKET_KINDS
    assert len(vbus_devices(hass, init_integration)) <= MAX_DEVICES
    assert field_entities(hass, init_integration) <= MAX_ENTITIES
    ignored = 2 * len(packets) - 2 * admitted
    assert coordinator.ignored == {bound: ignored if bound is flood.bound else 0 for bound in Bound}
    assert coordinator.unknown_packets == {}

    assert warnings(caplog) == [warning_text(flood.bound, packets[admitted])]
    assert our_issues(hass) == [
        (
            f"too_many_{flood.bound}_{init_integration.entry_id}",
            f"too_many_{flood.bound}",
            {"entry": init_integration.title, "limit": str(flood.bound.limit)},
        )
    ]
    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    assert len(diagnostics["packets"]) == KNOWN_KINDS + admitted
    assert diagnostics["ignored_frames"] == {str(b): coordinator.ignored[b] for b in Bound}

    await assert_still_updates(hass, init_integration)
    assert len(warnings(caplog)) == 1
    # A reload starts afresh: the issue goes with the old coordinator.
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert our_issues(hass) == []


async def test_unknown_kinds_are_kept_up_to_their_bound(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    coordinator = init_integration.runtime_data
    rng = random.Random(7)
    addresses = set()
    while len(addresses) < 2 * MAX_UNKNOWN_PACKETS:
        destination, source = rng.getrandbits(16), rng.getrandbits(16)
        if SPEC.find_template(destination, source, 0x0000) is None:
            addresses.add((destination, source))
    packets = [Packet(d, s, 0x0000, rng.randbytes(8)) for d, s in sorted(addresses)]
    later = [Packet(p.destination, p.source, p.command, bytes(8)) for p in packets]

    for packet in packets + later:
        coordinator._handle_frame(packet)
    await hass.async_block_till_done()

    kept = [PacketKey(0, p.destination, p.source, 0x0000) for p in packets[:MAX_UNKNOWN_PACKETS]]
    assert coordinator.unknown_packets == dict.fromkeys(kept, bytes(8))  # the latest data
    assert len(coordinator.packets) == KNOWN_KINDS
    assert vbus_devices(hass, init_integration) == {"0x7E11", "0x7E31"}
    assert field_entities(hass, init_integration) == KNOWN_FIELDS
    assert coordinator.ignored == {
        bound: 2 * MAX_UNKNOWN_PACKETS if bound is Bound.UNKNOWN_PACKETS else 0 for bound in Bound
    }
    assert warnings(caplog) == [warning_text(Bound.UNKNOWN_PACKETS, packets[MAX_UNKNOWN_PACKETS])]
    assert our_issues(hass) == [
        (
            f"too_many_unknown_packets_{init_integration.entry_id}",
            "too_many_unknown_packets",
            {"entry": init_integration.title, "limit": str(MAX_UNKNOWN_PACKETS)},
        )
    ]
    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    assert [u["id"] for u in diagnostics["unknown_packets"]] == sorted(k.packet_id for k in kept)
    await assert_still_updates(hass, init_integration)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert our_issues(hass) == []


async def test_bus_offers_from_too_many_addresses_raise_an_issue_until_reload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The engine's bound on offering addresses: its one warning, and a repair issue."""
    engine = init_integration.runtime_data.values.engine
    room = MAX_OFFERERS - len(engine._offers)  # the controller may have offered already
    for source in range(0x1000, 0x1000 + 3 * MAX_OFFERERS):  # forged offers, twice each
        engine._handle_frame(Datagram(BROADCAST, source, CMD_OFFER))
        engine._handle_frame(Datagram(BROADCAST, source, CMD_OFFER))
    await hass.async_block_till_done()
    assert engine.ignored_offers == 2 * (3 * MAX_OFFERERS - room)
    assert len(warnings(caplog)) == 1
    assert our_issues(hass) == [
        (
            f"too_many_offerers_{init_integration.entry_id}",
            "too_many_offerers",
            {"entry": init_integration.title, "limit": str(MAX_OFFERERS)},
        )
    ]
    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    assert diagnostics["parameter_engine"]["ignored_offers"] == engine.ignored_offers
    await assert_still_updates(hass, init_integration)
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert our_issues(hass) == []


@pytest.mark.parametrize("limit", EngineLimit)
async def test_each_engine_bound_has_an_issue_the_user_can_read(
    hass: HomeAssistant, init_integration: MockConfigEntry, limit: EngineLimit
) -> None:
    init_integration.runtime_data.values._limit_reached(limit)
    issue_id = f"too_many_{limit}_{init_integration.entry_id}"
    placeholders = {"entry": init_integration.title, "limit": str(limit.limit)}
    assert our_issues(hass) == [(issue_id, f"too_many_{limit}", placeholders)]
    for language in ("en", "de"):
        texts = json.loads((TRANSLATIONS / f"{language}.json").read_text())["issues"]
        assert set(re.findall(r"{(\w+)}", texts[f"too_many_{limit}"]["description"])) == {
            "entry",
            "limit",
        }
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert our_issues(hass) == []
