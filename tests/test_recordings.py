"""The DeltaSol MX recordings through the real coordinator and entities.

These tests read ``../shared/reference/data/recordings`` and skip without it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.vbus.blocktype import is_block_packet
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.specification import Specification

from .common import entry_data, header_sets, recording, shown, wait_for_packets

UNIQUE_ID = "001E66E7A003-1"


async def setup_dl3(hass: HomeAssistant, emulator: Emulator) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via DL3 channel 1",
        unique_id=UNIQUE_ID,
        data=entry_data(emulator.port, channel=1, serial="001E66E7A003", product="DL3"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    return entry


def shows_final_value(hass: HomeAssistant, entity: str, final: object) -> bool:
    """Whether ``entity`` shows ``final``; ``False`` for a value this check does not compare."""
    state = hass.states.get(entity)
    assert state is not None
    options = er.async_get(hass).async_get(entity).options.get("sensor.private", {})
    if options.get("suggested_unit_of_measurement") == "kWh":  # a meter that counts Wh
        assert isinstance(final, int)
        final /= 1000
    if isinstance(final, bool):
        assert state.state == ("on" if final else "off"), entity
    elif final is None:
        assert state.state == "unknown", entity
    elif isinstance(final, (int, float)) and state.attributes.get("device_class") != "timestamp":
        assert float(state.state) == pytest.approx(final), entity
    else:
        return False
    return True


@pytest.fixture
def first_set() -> list:
    sets = header_sets(recording("20140214_packets.vbus"))
    return [p for p in sets[0] if p.channel == 1]


async def test_entities_and_devices_snapshot(
    hass: HomeAssistant,
    socket_enabled: None,
    first_set: list,
    snapshot: SnapshotAssertion,
) -> None:
    source = StaticSource(*first_set)
    async with Emulator(
        personality=Personality.DL3, channels={1: source}, offer_interval=None
    ) as emulator:
        with pytest.MonkeyPatch.context() as patcher:
            patcher.setattr("custom_components.resol_vbus.PLATFORMS", [Platform.SENSOR])
            # snapshot_platform wants every entity enabled (and so with a state)
            patcher.setattr(
                "custom_components.resol_vbus.sensor.enabled_by_default", lambda *_: True
            )
            entry = await setup_dl3(hass, emulator)
            known = [p for p in first_set if not is_block_packet(p)]
            await wait_for_packets(
                entry.runtime_data, len({(p.source, p.destination) for p in known})
            )
            await hass.async_block_till_done()
            registry = er.async_get(hass)
            entities = {}
            for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
                state = hass.states.get(entity.entity_id)
                entities[entity.entity_id] = {
                    "unique_id": entity.unique_id,
                    "original_name": entity.original_name,
                    "device_class": entity.original_device_class,
                    "entity_category": entity.entity_category,
                    "state": state.state if state else None,
                    "attributes": dict(state.attributes) if state else None,
                }
            # A plain structure, so that one snapshot serves every supported release.
            assert entities == snapshot(name="entities", extension_class=JSONSnapshotExtension)
        devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        assert sorted(
            (d.name, d.model, d.model_id, sorted(d.identifiers)) for d in devices
        ) == snapshot(name="devices", extension_class=JSONSnapshotExtension)
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_block_packet_stays_a_block_packet(
    hass: HomeAssistant, socket_enabled: None, first_set: list
) -> None:
    """The MX's 7E11 → 0015 packet matches no template: no device, entity or unknown kind."""
    (block,) = [p for p in first_set if p.destination == 0x0015]
    assert (block.source, block.command) == (0x7E11, 0x0100)
    assert Specification.bundled().decoder_for(block) is None
    others = [p for p in first_set if p is not block]
    async with Emulator(
        personality=Personality.DL3, channels={1: StaticSource(*first_set)}, offer_interval=None
    ) as emulator:
        entry = await setup_dl3(hass, emulator)
        coordinator = entry.runtime_data
        await wait_for_packets(coordinator, len(others))
        coordinator._handle_frame(block)
        await hass.async_block_till_done()
        assert sorted(key.packet_id for key in coordinator.packets) == sorted(
            p.packet_id for p in others
        )
        assert coordinator.unknown_packets == {}
        registry = er.async_get(hass)
        unique_ids = [
            e.unique_id for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        ]
        assert unique_ids
        assert not [u for u in unique_ids if "_0015_" in u]
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_states_equal_decoded_values_and_no_redundant_writes(
    hass: HomeAssistant, socket_enabled: None, first_set: list
) -> None:
    """Replay a whole day: one state change per visible value change, nothing more."""
    sets = header_sets(recording("20140214_packets.vbus"))
    spec = Specification.bundled()
    async with Emulator(
        personality=Personality.DL3, channels={1: StaticSource(*first_set)}, offer_interval=None
    ) as emulator:
        entry = await setup_dl3(hass, emulator)
        coordinator = entry.runtime_data
        known = [p for p in first_set if not is_block_packet(p)]
        await wait_for_packets(coordinator, len({(p.source, p.destination) for p in known}))
        await hass.async_block_till_done()
        registry = er.async_get(hass)
        ours = {
            e.entity_id: e.unique_id
            for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            if not e.disabled_by
        }
        changed: Counter[str] = Counter()
        reported: Counter[str] = Counter()

        @callback
        def ours_only(data: dict) -> bool:
            return data["entity_id"] in ours

        hass.bus.async_listen(
            EVENT_STATE_CHANGED,
            callback(lambda e: changed.update([e.data["entity_id"]])),
            event_filter=ours_only,
        )
        hass.bus.async_listen(
            EVENT_STATE_REPORTED,
            callback(lambda e: reported.update([e.data["entity_id"]])),
            event_filter=ours_only,
        )

        expected: Counter[str] = Counter()
        last: dict[str, object] = {}
        for packet in (p for s in sets for p in s if p.channel == 1):
            decoder = spec.decoder_for(packet)
            if decoder is None or is_block_packet(packet):
                continue
            for spec_field, value in zip(
                decoder.fields, decoder.decode(packet.frame_data), strict=True
            ):
                unique_id = f"{UNIQUE_ID}_{packet.packet_id}_{spec_field.field_id}"
                shown_value = shown(spec_field, value)
                if unique_id in last and last[unique_id] != shown_value:
                    expected[unique_id] += 1
                last[unique_id] = shown_value
            coordinator._handle_frame(packet)
        await hass.async_block_till_done()

        by_unique_id = {unique_id: entity for entity, unique_id in ours.items()}
        assert {by_unique_id[u]: n for u, n in expected.items() if u in by_unique_id} == dict(
            changed
        )
        assert sum(changed.values()) > 1000
        assert reported == Counter()
        # Every enabled entity ends with the recording's last decoded value.
        compared = 0
        for entity, unique_id in ours.items():
            if unique_id == f"{UNIQUE_ID}_connection":  # the adapter's, not a packet field
                assert hass.states.get(entity).state == "on"
                continue
            compared += shows_final_value(hass, entity, last[unique_id])
        assert compared > 150
        assert await hass.config_entries.async_unload(entry.entry_id)
