"""Settings entities show what the controller holds (issue 13).

No lost write, no stale setting, no optimistic state: while the connection is down the settings
are unavailable; after a reconnect they are read again before they show or let a write be
skipped; a write that waits for the bus shows the confirmed value and the requested one as
``pending``; the write limit counts the controller's writes, not the requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.resol_vbus.const import ATTR_PENDING, CONF_WRITE_LIMIT, DOMAIN
from custom_components.resol_vbus.coordinator import REREAD_RETRY
from custom_components.resol_vbus.vbus.emulator import Emulator
from custom_components.resol_vbus.vbus.parameters import ParameterError, ValueResult
from custom_components.resol_vbus.vbus.protocol import CMD_GET, CMD_SET, Datagram
from custom_components.resol_vbus.vbus.session import SessionState

from .common import (
    UNIQUE_ID,
    let_packets_go_stale,
    mx_controller,
    setup_values,
    wait_for_state,
    wait_until_read,
    withhold_offers,
)
from .vbus_lib.faultproxy import Failure, FaultProxy, Step

RELAY_1 = "Relais_Regler_R1_Handbetrieb"
STORE_MAX = "Solar_Sp1_Tmax"  # °C × 10 in the controller


def entity(hass: HomeAssistant, platform: str, key: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{UNIQUE_ID}_00_7E11_{key}")
    assert found is not None, key
    return found


SETTINGS_PLATFORMS = (SELECT_DOMAIN, NUMBER_DOMAIN, SWITCH_DOMAIN, BUTTON_DOMAIN)


def settings(hass: HomeAssistant) -> dict[str, str]:
    """Entity id → state of every enabled settings entity (select, number, switch, button)."""
    states = {
        item.entity_id: hass.states.get(item.entity_id).state
        for item in er.async_get(hass).entities.values()
        if item.platform == DOMAIN
        and item.domain in SETTINGS_PLATFORMS
        and item.disabled_by is None
    }
    assert {entity_id.partition(".")[0] for entity_id in states} == set(SETTINGS_PLATFORMS)
    return states


@pytest.fixture
async def proxy(mx: Emulator) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the MX: the tests cut the connection at will."""
    async with FaultProxy(mx.port) as proxy:
        yield proxy


async def test_settings_are_unavailable_while_the_connection_is_down(
    hass: HomeAssistant, mx: Emulator, proxy: FaultProxy, fast_reconnect: None
) -> None:
    """Defect 2: they stayed available with their old values while every sensor did not."""
    values = await setup_values(hass, mx, port=proxy.port)
    assert STATE_UNAVAILABLE not in settings(hass).values()
    session = values.config_entry.runtime_data.session
    proxy.arm(Step.GREETING, Failure.RESET, times=10**6)  # the logger stays unreachable
    proxy.reset_all()
    await wait_for_state(session, SessionState.DISCONNECTED)
    await hass.async_block_till_done()
    assert set(settings(hass).values()) == {STATE_UNAVAILABLE}
    proxy.arm(Step.GREETING, Failure.RESET, times=0)
    await wait_for_state(session, SessionState.CONNECTED)
    await wait_until_read(values)
    await hass.async_block_till_done()
    assert STATE_UNAVAILABLE not in settings(hass).values()


async def test_a_value_changed_while_disconnected_is_read_and_not_skipped(
    hass: HomeAssistant, mx: Emulator, proxy: FaultProxy, fast_reconnect: None
) -> None:
    """Defect 3: the old value outlived the reconnect, and choosing it again was skipped."""
    values = await setup_values(hass, mx, port=proxy.port)
    relay = entity(hass, SELECT_DOMAIN, "relay_1_manual_mode")
    assert hass.states.get(relay).state == "auto"
    session = values.config_entry.runtime_data.session
    controller = mx.controller(1)
    store = controller.store
    await controller.wait_bus_free()  # the set-up's bus session is over
    proxy.arm(Step.GREETING, Failure.RESET, times=10**6)
    proxy.reset_all()
    await wait_for_state(session, SessionState.DISCONNECTED)
    store[RELAY_1].value = 1  # changed at the controller meanwhile: Min
    handovers, received = controller.handovers, controller.received_total
    sessions = values.engine.bus_sessions
    proxy.arm(Step.GREETING, Failure.RESET, times=0)
    await wait_for_state(session, SessionState.CONNECTED)
    await wait_until_read(values)
    await hass.async_block_till_done()
    assert hass.states.get(relay).state == "min"
    # Within one offer: the first bus session after the reconnect read it, and no other ran.
    assert (values.engine.bus_sessions, controller.handovers) == (sessions + 1, handovers + 1)
    since = list(controller.received)[received - controller.received_total :]
    assert (CMD_GET, store[RELAY_1].index) in {(d.command, d.param16) for d in since}
    writes = len(store.writes)
    await hass.services.async_call(
        SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "auto"}, blocking=True
    )
    assert store.writes[writes:] == [(store[RELAY_1].index, 2)]
    assert hass.states.get(relay).state == "auto"


def shown(events: list[Event], entity_id: str) -> list[tuple[str, object]]:
    """(state, pending attribute) of every state written for ``entity_id``."""
    return [
        (event.data["new_state"].state, event.data["new_state"].attributes.get(ATTR_PENDING))
        for event in events
        if event.data["entity_id"] == entity_id
    ]


async def wait_for(hass: HomeAssistant, entity_id: str, wanted: Callable[[State], bool]) -> None:
    """Until the state of ``entity_id`` is ``wanted`` (at most 10 s)."""
    reached = asyncio.Event()

    @callback  # on the event loop (a plain function would run in an executor thread)
    def check(event: Event) -> None:
        if event.data["entity_id"] == entity_id and wanted(event.data["new_state"]):
            reached.set()

    remove = hass.bus.async_listen("state_changed", check)
    try:
        state = hass.states.get(entity_id)
        if state is None or not wanted(state):
            async with asyncio.timeout(10):
                await reached.wait()
    finally:
        remove()


async def wait_for_pending(hass: HomeAssistant, entity_id: str) -> None:
    await wait_for(hass, entity_id, lambda state: ATTR_PENDING in state.attributes)


@pytest.mark.parametrize("offered", [True, False], ids=["acknowledged", "bus-not-offered"])
async def test_a_pending_write_shows_the_confirmed_value_and_the_request(
    hass: HomeAssistant,
    mx: Emulator,
    offered: bool,  # noqa: FBT001 - a parameter of the test
) -> None:
    """Defect 4: the new option showed at once, as if written; 30 s later it reverted."""
    await setup_values(hass, mx)
    relay = entity(hass, SELECT_DOMAIN, "relay_2_manual_mode")
    events = async_capture_events(hass, "state_changed")
    await withhold_offers(mx)
    call = asyncio.create_task(
        hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
        )
    )
    await wait_for_pending(hass, relay)
    assert shown(events, relay) == [("auto", "on")]  # the confirmed option, and the request
    if offered:
        mx.faults.never_offer_bus = False
        await call
        assert shown(events, relay) == [("auto", "on"), ("on", None)]
    else:
        with pytest.raises(HomeAssistantError) as excinfo:
            await call
        assert excinfo.value.translation_key == "bus_not_offered"
        assert shown(events, relay) == [("auto", "on"), ("auto", None)]


async def test_the_write_limit_counts_writes_not_requests(
    hass: HomeAssistant, mx: Emulator
) -> None:
    """Defect 5: steps merged into one write were refused as if each had been a write."""
    await setup_values(hass, mx, **{CONF_WRITE_LIMIT: 1})
    number = entity(hass, NUMBER_DOMAIN, "store_1_max_temperature")
    store = mx.controller(1).store
    await withhold_offers(mx)
    steps = [
        asyncio.create_task(
            hass.services.async_call(
                NUMBER_DOMAIN, "set_value", {ATTR_ENTITY_ID: number, "value": v}, blocking=True
            )
        )
        for v in (51, 52, 53, 54, 55, 56)  # a slider's release and five arrow-key steps
    ]
    await wait_for_pending(hass, number)
    mx.faults.never_offer_bus = False
    await asyncio.gather(*steps)  # none refused
    assert store.writes == [(store[STORE_MAX].index, 560)]  # one write: the last value
    assert hass.states.get(number).state == "56.0"
    with pytest.raises(HomeAssistantError) as excinfo:  # the one write of the minute was made
        await hass.services.async_call(
            NUMBER_DOMAIN, "set_value", {ATTR_ENTITY_ID: number, "value": 57}, blocking=True
        )
    assert excinfo.value.translation_key == "write_rate_limited"


async def test_a_merged_write_survives_the_caller_who_gave_up(
    hass: HomeAssistant, mx: Emulator
) -> None:
    """Defect 1 through Home Assistant: the number's write is cancelled, the action's is not."""
    await setup_values(hass, mx)
    number = entity(hass, NUMBER_DOMAIN, "store_1_max_temperature")
    store = mx.controller(1).store
    await withhold_offers(mx)
    slider = asyncio.create_task(
        hass.services.async_call(
            NUMBER_DOMAIN, "set_value", {ATTR_ENTITY_ID: number, "value": 61}, blocking=True
        )
    )
    await wait_for_pending(hass, number)
    action = asyncio.create_task(
        hass.services.async_call(
            DOMAIN,
            "set_value",
            {
                "config_entry_id": hass.config_entries.async_entries(DOMAIN)[0].entry_id,
                "value_id": STORE_MAX,
                "value": 650,
            },
            blocking=True,
            return_response=True,
        )
    )
    await asyncio.sleep(0)
    slider.cancel()  # a script stopped
    with pytest.raises(asyncio.CancelledError):
        await slider
    mx.faults.never_offer_bus = False
    result = await action
    assert result is not None
    assert result["value"] == 650
    assert store.writes == [(store[STORE_MAX].index, 650)]
    assert hass.states.get(number).state == "65.0"


async def choose_on_and_fail(hass: HomeAssistant, relay: str, *, shows: str) -> str | None:
    """Choose "on" for ``relay`` (now "auto"); the write fails with an unknown outcome.

    The entity shows "auto" with "on" pending, is unavailable until the value is read again,
    then ``shows`` what the controller holds. Returns the error's translation key.
    """
    events = async_capture_events(hass, "state_changed")
    with pytest.raises(HomeAssistantError) as excinfo:
        await hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
        )
    await wait_for(hass, relay, lambda state: state.state != STATE_UNAVAILABLE)
    assert shown(events, relay) == [("auto", "on"), (STATE_UNAVAILABLE, None), (shows, None)]
    return excinfo.value.translation_key


@pytest.mark.parametrize("carried_out", [True, False], ids=["answer-lost", "write-lost"])
async def test_a_write_nobody_acknowledged_is_read_again_before_it_shows(
    hass: HomeAssistant,
    mx: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    carried_out: bool,  # noqa: FBT001 - a parameter of the test
) -> None:
    """The connection stays up, the write gets no answer: the request never shows as confirmed.

    The setting is unknown (unavailable) until it is read again, then shows what the controller
    holds: the new option if it carried the write out, else the old one.
    """
    await setup_values(hass, mx)
    relay = entity(hass, SELECT_DOMAIN, "relay_1_manual_mode")
    controller = mx.controller(1)
    answer = controller._answer

    def no_acknowledgement(request: Datagram) -> Datagram | None:
        if request.command != CMD_SET:
            return answer(request)
        if carried_out:
            answer(request)  # it writes; the acknowledgement is lost
        return None

    monkeypatch.setattr(controller, "_answer", no_acknowledgement)
    held = "on" if carried_out else "auto"
    assert await choose_on_and_fail(hass, relay, shows=held) == "no_answer"
    assert controller.store[RELAY_1].value == (4 if carried_out else 2)


async def test_a_write_that_failed_after_it_was_sent_is_read_again_before_it_shows(
    hass: HomeAssistant, mx: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error no code path expects (a bug) after the write went out: its outcome is unknown.

    Only a write that was not sent, or that the controller refused, leaves the shown value
    confirmed; after anything else the setting is read again before it shows.
    """
    values = await setup_values(hass, mx)
    relay = entity(hass, SELECT_DOMAIN, "relay_1_manual_mode")
    engine_set = values.engine.set

    async def set_then_fail(*args: Any, **kwargs: Any) -> ValueResult:
        await engine_set(*args, **kwargs)  # the controller acknowledged it
        msg = "Unexpected error: RuntimeError('a bug')"
        raise ParameterError(msg)

    monkeypatch.setattr(values.engine, "set", set_then_fail)
    assert await choose_on_and_fail(hass, relay, shows="on") == "write_failed"
    assert mx.controller(1).store[RELAY_1].value == 4


async def test_a_controller_silent_for_a_minute_is_read_again_before_its_settings_show(
    hass: HomeAssistant, mx: Emulator
) -> None:
    """It may have restarted meanwhile (with other settings): its packets went stale.

    Its settings are unavailable while its packets are stale, and show again only once read.
    The connection, and with it the engine, stays up: the emulator sends the controller's packet
    once per connection, so no live packet can race the faked clock (the test feeds it).
    """
    values = await setup_values(hass, mx)
    coordinator = values.config_entry.runtime_data
    relay = entity(hass, SELECT_DOMAIN, "relay_1_manual_mode")
    events = async_capture_events(hass, "state_changed")
    let_packets_go_stale(coordinator)
    await hass.async_block_till_done()
    assert set(settings(hass).values()) == {STATE_UNAVAILABLE}
    mx.controller(1).store[RELAY_1].value = 1  # Min, after the restart
    coordinator._handle_frame(mx_controller())  # it sends again
    await wait_until_read(values)
    await hass.async_block_till_done()
    assert STATE_UNAVAILABLE not in settings(hass).values()
    assert shown(events, relay) == [(STATE_UNAVAILABLE, None), ("min", None)]


async def test_numbers_are_boxes_not_sliders(hass: HomeAssistant, mx: Emulator) -> None:
    """A slider writes the controller's flash at every step it passes through."""
    values = await setup_values(hass, mx)
    numbers = [
        item.entity_id
        for item in er.async_entries_for_config_entry(
            er.async_get(hass), values.config_entry.entry_id
        )
        if item.domain == NUMBER_DOMAIN and item.disabled_by is None
    ]
    assert numbers
    assert {hass.states.get(entity_id).attributes["mode"] for entity_id in numbers} == {"box"}


async def test_a_failed_reread_after_a_reconnect_is_tried_again_within_a_minute(
    hass: HomeAssistant, mx: Emulator, proxy: FaultProxy, fast_reconnect: None
) -> None:
    """Unknown settings stay unavailable only until a read works: not for the 10 min interval."""
    values = await setup_values(hass, mx, port=proxy.port)
    relay = entity(hass, SELECT_DOMAIN, "relay_1_manual_mode")
    session = values.config_entry.runtime_data.session
    await withhold_offers(mx)  # the controller keeps the bus: the re-read will fail
    failed = asyncio.Event()
    remove = values.async_add_listener(lambda: not values.last_update_success and failed.set())
    proxy.reset_all()
    await wait_for_state(session, SessionState.CONNECTED)
    async with asyncio.timeout(30):  # the engine's wait for an offer (FAST: 3 s), a bound here
        await failed.wait()
    remove()
    await hass.async_block_till_done()
    assert hass.states.get(relay).state == STATE_UNAVAILABLE
    assert values.update_interval == REREAD_RETRY
    mx.faults.never_offer_bus = False
    async_fire_time_changed(hass, dt_util.utcnow() + REREAD_RETRY + timedelta(seconds=1))
    await wait_until_read(values)
    await hass.async_block_till_done()
    assert hass.states.get(relay).state == "auto"
    assert values.update_interval == values.refresh_interval == timedelta(minutes=10)
