"""Fault injection at the Home Assistant level: the emulator misbehaves, the integration copes."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

import pytest
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, EVENT_HOMEASSISTANT_STOP, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.protocol import CMD_SET
from custom_components.resol_vbus.vbus.session import SessionState, VBusSession

from .common import (
    UNIQUE_ID,
    entry_data,
    mx_controller,
    setup_values,
    wait_for_packets,
    wait_for_state,
    wait_until_read,
    withhold_offers,
)
from .vbus_lib.faultproxy import Failure, FaultProxy, Step

TEMPERATURE = f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0"


def temperature(hass: HomeAssistant) -> str:
    found = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, TEMPERATURE)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("personality", "fault", "extra", "state"),
    [
        (Personality.DL3, "reject_channel", {"channel": 1}, ConfigEntryState.SETUP_ERROR),
        (Personality.DL2, "reject_data", {}, ConfigEntryState.SETUP_RETRY),
    ],
)
async def test_rejections_at_setup(
    hass: HomeAssistant,
    socket_enabled: None,
    fast_reconnect: None,
    personality: Personality,
    fault: str,
    extra: dict,
    state: ConfigEntryState,
) -> None:
    async with Emulator(personality=personality, offer_interval=None) as emulator:
        setattr(emulator.faults, fault, True)
        entry = MockConfigEntry(
            domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(emulator.port, **extra)
        )
        entry.add_to_hass(hass)
        with pytest.MonkeyPatch.context() as patcher:
            patcher.setattr("custom_components.resol_vbus.coordinator.SETUP_TIMEOUT", 0.5)
            assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is state


async def test_unknown_via_tag_is_a_configuration_error(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    async with Emulator(personality=Personality.VBUSNET) as emulator:
        data = entry_data(emulator.port, connection="vbusnet", via_tag="unknown", channel=1)
        entry = MockConfigEntry(domain=DOMAIN, unique_id="vbusnet-unknown-1", data=data)
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_ERROR
        assert entry.reason is not None
        assert "unknown" not in entry.reason  # the via tag is a secret, even in messages


async def test_password_changed_at_runtime_asks_for_it_once(
    hass: HomeAssistant, init_integration: MockConfigEntry, emulator: Emulator
) -> None:
    session = init_integration.runtime_data.session
    emulator.faults.refuse_password = True
    await emulator.reboot()
    await wait_for_state(session, SessionState.FAILED)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert hass.states.get(temperature(hass)).state == STATE_UNAVAILABLE
    # No reconnect storm: the session gave up after the rejection and stays down.
    assert session.state is SessionState.FAILED
    assert emulator.connections == 0


async def test_cut_mid_frame_then_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.resol_vbus")
    session = init_integration.runtime_data.session
    emulator.faults.cut_mid_frame = True
    await emulator.reboot()
    await wait_for_state(session, SessionState.CONNECTED)
    await hass.async_block_till_done()
    assert hass.states.get(temperature(hass)).state == "1.9"
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert len([m for m in messages if m.startswith("Lost connection")]) == 1
    assert len([m for m in messages if m.startswith("Connection to")]) == 1


async def test_silent_link_is_detected_by_the_watchdog(
    hass: HomeAssistant, socket_enabled: None, fast_reconnect: None
) -> None:
    async with Emulator(
        channels={1: StaticSource(mx_controller())}, offer_interval=None
    ) as emulator:
        entry = MockConfigEntry(domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(emulator.port))
        entry.add_to_hass(hass)
        with pytest.MonkeyPatch.context() as patcher:
            patcher.setattr(
                "custom_components.resol_vbus.coordinator.VBusSession",
                functools.partial(VBusSession, watchdog_timeout=0.3),
            )
            assert await hass.config_entries.async_setup(entry.entry_id)
        session = entry.runtime_data.session
        # The StaticSource sends once: after that the link is silent.
        reasons: list[str] = []
        session.add_state_listener(
            lambda state, reason: state == SessionState.DISCONNECTED and reasons.append(str(reason))
        )
        await wait_for_state(session, SessionState.DISCONNECTED)
        assert reasons[0] == "No VBus data from the device for 0.3 s"
        await wait_for_state(session, SessionState.CONNECTED)
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    "fault", [{"drop_answers": 1}, {"duplicate_answers": True}, {"answer_delay": 0.25}]
)
async def test_parameter_answer_faults_still_write_exactly_once(
    hass: HomeAssistant, mx: Emulator, fault: dict
) -> None:
    await setup_values(hass, mx)
    relay = er.async_get(hass).async_get_entity_id(
        SELECT_DOMAIN, DOMAIN, f"{UNIQUE_ID}_00_7E11_relay_4_manual_mode"
    )
    for name, setting in fault.items():
        setattr(mx.faults, name, setting)
    await hass.services.async_call(
        SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
    )
    store = mx.controller(1).store
    assert store["Relais_Regler_R4_Handbetrieb"].value == 4
    assert {value for index, value in store.writes} == {4}
    assert hass.states.get(relay).state == "on"


async def test_connection_lost_during_a_write_fails_loudly(
    hass: HomeAssistant, mx: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write was sent, its acknowledgement did not come: nobody knows whether it arrived."""
    await setup_values(hass, mx)
    relay = er.async_get(hass).async_get_entity_id(
        SELECT_DOMAIN, DOMAIN, f"{UNIQUE_ID}_00_7E11_relay_5_manual_mode"
    )
    controller = mx.controller(1)
    answer = controller._answer
    # The controller takes the write but never acknowledges it ...
    monkeypatch.setattr(
        controller,
        "_answer",
        lambda request: None if request.command == CMD_SET else answer(request),
    )
    write = asyncio.create_task(
        hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
        )
    )
    while not any(datagram.command == CMD_SET for datagram in controller.received):
        await controller.wait_for_received(len(controller.received) + 1)
    await mx.reboot()  # ... and the connection breaks while the write waits for that
    with pytest.raises(HomeAssistantError) as excinfo:
        await write
    assert excinfo.value.translation_key == "connection_lost"
    assert str(excinfo.value) == (  # Home Assistant drops the final period
        "The connection to the controller was lost before Relay 5 manual mode was confirmed; it "
        "may or may not have been changed. The integration reconnects by itself: once the "
        "controller's entities are available again, check the value and try again if needed"
    )


async def test_stopping_home_assistant_while_a_write_is_queued(
    hass: HomeAssistant, mx: Emulator
) -> None:
    values = await setup_values(hass, mx)
    relay = er.async_get(hass).async_get_entity_id(
        SELECT_DOMAIN, DOMAIN, f"{UNIQUE_ID}_00_7E11_relay_6_manual_mode"
    )
    await withhold_offers(mx)
    write = asyncio.create_task(
        hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
        )
    )
    await asyncio.sleep(0)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    with pytest.raises(HomeAssistantError) as excinfo:
        await write
    assert excinfo.value.translation_key == "not_sent"
    assert values.engine._queue == []  # nothing left behind to be written later
    assert mx.controller(1).store.writes == []


@pytest.mark.parametrize(
    ("updates_after_lookup", "index_shift", "error"),
    [(0, 1, None), (1, 2, None), (2, None, "changeset_changed")],
)
async def test_firmware_update_between_lookup_and_write(
    hass: HomeAssistant,
    mx: Emulator,
    updates_after_lookup: int,
    index_shift: int | None,
    error: str | None,
) -> None:
    """The value list changes after Home Assistant looked the index up: never a stale write.

    The refresh at setup looked every index up. Then a firmware update moves each value one
    index up and changes the changeset; with ``updates_after_lookup`` it happens again right
    after the write's own look-up (inside the bus session). One change is followed by a new
    look-up, the write lands at the moved index; if the list keeps changing, nothing is written
    and the action fails with the reason.
    """
    values = await setup_values(hass, mx)
    relay = er.async_get(hass).async_get_entity_id(
        SELECT_DOMAIN, DOMAIN, f"{UNIQUE_ID}_00_7E11_relay_2_manual_mode"
    )
    store = mx.controller(1).store
    value = store["Relais_Regler_R2_Handbetrieb"]
    looked_up = value.index
    assert values.engine.cache.get(0x7E11, store.changeset, value.id_hash) == looked_up
    store.firmware_update(store.changeset + 0x100, index_shift=1)
    mx.faults.update_after_lookups = updates_after_lookup
    assert hass.states.get(relay).state == "auto"
    call = hass.services.async_call(
        SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
    )
    if error is None:
        await call
        # Only the moved index was written (a retry on a busy machine may repeat the write).
        assert set(store.writes) == {(looked_up + index_shift, 4)}
        assert value.value == 4
        assert hass.states.get(relay).state == "on"
        assert values.engine.cache.get(0x7E11, store.changeset, value.id_hash) == value.index
    else:
        with pytest.raises(HomeAssistantError) as excinfo:
            await call
        assert excinfo.value.translation_key == error
        assert "kept changing" in excinfo.value.translation_placeholders["error"]
        assert store.writes == []
        # The value list changed: nothing shows as known until it is read again.
        assert hass.states.get(relay).state == STATE_UNAVAILABLE
        await wait_until_read(values)
        assert hass.states.get(relay).state == "auto"


# -- network failures at every step (fault-injecting proxy in front of the emulator) ------------

NETWORK_FAILURES = (Failure.RESET, Failure.EOF, Failure.GARBAGE)
#: Failures that end only when the step's deadline passes (short_replies shortens it).
TIMED_OUT = (Failure.SILENCE, Failure.FLOOD)
SESSION_STEPS = (Step.GREETING, Step.CONNECT, Step.PASS, Step.CHANNEL, Step.DATA)


@pytest.fixture
async def vbusnet_proxy(socket_enabled: None) -> AsyncIterator[FaultProxy]:
    """VBus.net (every handshake command the session sends) behind a fault-injecting proxy."""
    async with (
        Emulator(
            personality=Personality.VBUSNET,
            channels={1: StaticSource(mx_controller())},
            offer_interval=None,
        ) as emulator,
        FaultProxy(emulator.port) as proxy,
    ):
        yield proxy


def vbusnet_entry(hass: HomeAssistant, proxy: FaultProxy) -> MockConfigEntry:
    data = entry_data(proxy.port, connection="vbusnet", via_tag="mylogger", channel=1)
    entry = MockConfigEntry(domain=DOMAIN, unique_id="vbusnet-mylogger-1", data=data)
    entry.add_to_hass(hass)
    return entry


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("failure", NETWORK_FAILURES + TIMED_OUT)
@pytest.mark.parametrize("step", SESSION_STEPS)
async def test_a_failure_at_setup_is_retried_until_it_passes(
    hass: HomeAssistant,
    vbusnet_proxy: FaultProxy,
    fast_reconnect: None,
    short_replies: None,
    caplog: pytest.LogCaptureFixture,
    step: Step,
    failure: Failure,
) -> None:
    """One failure at any step: the entry still loads (the session retried by itself)."""
    vbusnet_proxy.arm(step, failure)
    entry = vbusnet_entry(hass, vbusnet_proxy)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    assert vbusnet_proxy.injected == 1
    assert errors_logged(caplog) == []
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("failure", NETWORK_FAILURES)
@pytest.mark.parametrize("step", SESSION_STEPS)
async def test_a_lasting_failure_at_setup_asks_to_retry(
    hass: HomeAssistant,
    vbusnet_proxy: FaultProxy,
    fast_reconnect: None,
    caplog: pytest.LogCaptureFixture,
    step: Step,
    failure: Failure,
) -> None:
    """Every attempt fails: setup is retried later (not an error), without a traceback."""
    vbusnet_proxy.arm(step, failure, times=10**6)
    entry = vbusnet_entry(hass, vbusnet_proxy)
    with pytest.MonkeyPatch.context() as patcher:
        patcher.setattr("custom_components.resol_vbus.coordinator.SETUP_TIMEOUT", 0.5)
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert entry.reason.startswith("Could not connect to the VBus device: ")
    assert f"({step})" in entry.reason
    assert errors_logged(caplog) == []
    # Nothing a user would see (asyncio's own debug records of the resets may carry one).
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.INFO)


@pytest.mark.parametrize("failure", NETWORK_FAILURES + TIMED_OUT)
async def test_entities_recover_by_themselves_after_failed_reconnects(
    hass: HomeAssistant,
    vbusnet_proxy: FaultProxy,
    fast_reconnect: None,
    short_replies: None,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
) -> None:
    """The logger reboots; the first reconnects fail at PASS; the entities come back alone."""
    caplog.set_level(logging.INFO, logger="custom_components.resol_vbus")
    entry = vbusnet_entry(hass, vbusnet_proxy)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for_packets(entry.runtime_data, 1)
    await hass.async_block_till_done()
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, "vbusnet-mylogger-1_01_0010_7E11_10_0100_000_2_0"
    )
    assert entity_id is not None
    assert hass.states.get(entity_id).state == "1.9"
    session = entry.runtime_data.session
    vbusnet_proxy.arm(Step.PASS, failure, times=3)
    unavailable = async_capture_events(hass, "state_changed")
    vbusnet_proxy.reset_all()
    await wait_for_state(session, SessionState.DISCONNECTED)
    await wait_for_state(session, SessionState.CONNECTED)
    await hass.async_block_till_done()
    assert vbusnet_proxy.injected == 3
    assert hass.states.get(entity_id).state == "1.9"
    shown = [
        event.data["new_state"].state
        for event in unavailable
        if event.data["entity_id"] == entity_id
    ]
    assert shown == [STATE_UNAVAILABLE, "1.9"]
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert len([m for m in messages if m.startswith("Lost connection")]) == 1
    assert len([m for m in messages if m.startswith("Connection to")]) == 1
    assert errors_logged(caplog) == []
    assert await hass.config_entries.async_unload(entry.entry_id)
