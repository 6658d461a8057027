"""Home Assistant never shows the password or the via tag either (issue 8, §4), end to end.

A VBus.net entry (via tag and password) goes through everything that produces text: a setup
with a mistyped password and the re-authentication that follows, the values of the controller,
an action that fails, a diagnostics download, a password changed on the device while running,
and the unload. With every logger at DEBUG, every log record, the entry's error text, the
reauthentication forms, the exceptions, the diagnostics, the repair issues, the registries and
all states are searched for the secrets.
"""

from __future__ import annotations

import json
import logging

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.config_flow import vbusnet_device_id
from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.diagnostics import async_get_config_entry_diagnostics
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.session import SessionState
from tests.common import (
    FAST,
    entry_data,
    mx_controller,
    wait_for_state,
    wait_for_values,
    withhold_offers,
)
from tests.reliability.evidence import PASSWORD, TYPO, VIA_TAG, Evidence

pytestmark = pytest.mark.usefixtures("socket_enabled", "fast_reconnect")


async def test_home_assistant_never_shows_the_secrets(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("custom_components.resol_vbus.coordinator.ENGINE_TIMING", FAST)
    evidence = Evidence()
    async with Emulator(
        personality=Personality.VBUSNET,
        password=PASSWORD,
        via_tags=(VIA_TAG,),
        channels={1: StaticSource(mx_controller())},
        offer_interval=0.05,
    ) as emulator:
        data = entry_data(
            emulator.port, connection="vbusnet", via_tag=VIA_TAG, channel=1, password=TYPO
        )
        entry = MockConfigEntry(
            domain=DOMAIN, unique_id=f"{vbusnet_device_id(VIA_TAG)}-1", data=data
        )
        entry.add_to_hass(hass)

        # A mistyped password: setup error and a re-authentication, first mistyped again.
        assert not await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.SETUP_ERROR
        evidence.texts.append(str(entry.reason))
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        assert flow["context"]["source"] == SOURCE_REAUTH
        evidence.texts.append(repr(flow))
        for password, outcome in ((TYPO, "form"), (PASSWORD, "abort")):
            result = await hass.config_entries.flow.async_configure(
                flow["flow_id"], {CONF_PASSWORD: password}
            )
            assert result["type"] == outcome
            evidence.texts.append(repr({k: v for k, v in result.items() if k != "data_schema"}))
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED

        # The controller's values, and an action that fails (the bus is never offered).
        await wait_for_values(hass, entry)
        await withhold_offers(emulator)
        with pytest.raises(HomeAssistantError) as excinfo:
            await hass.services.async_call(
                DOMAIN,
                "set_value",
                {"config_entry_id": entry.entry_id, "value_index": 56, "value": 0},
                blocking=True,
            )
        evidence.exception(excinfo.value)
        evidence.texts.append(repr(excinfo.value.translation_placeholders))
        emulator.faults.never_offer_bus = False

        evidence.texts.append(json.dumps(await async_get_config_entry_diagnostics(hass, entry)))

        # The password changed on the device: the session stops and asks for it again.
        session = entry.runtime_data.session
        emulator.faults.refuse_password = True
        await emulator.reboot()
        await wait_for_state(session, SessionState.FAILED)
        await hass.async_block_till_done()
        evidence.texts.append(repr(session.last_error))

        evidence.texts += [repr(state) for state in hass.states.async_all()]
        evidence.texts += [
            repr(device)
            for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        ]
        evidence.texts += [
            repr(item)
            for item in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        ]
        evidence.texts += [repr(issue) for issue in ir.async_get(hass).issues.values()]
        evidence.texts.append(repr(entry))
        assert await hass.config_entries.async_unload(entry.entry_id)

    evidence.records(caplog.records)
    messages = {record.getMessage() for record in caplog.records}
    # The evidence holds what could have leaked: debug lines of the handshake, the loss.
    assert "Sending PASS" in messages
    assert "Sending CONNECT" in messages
    assert any(message.startswith("Lost connection to 127.0.0.1") for message in messages)
    evidence.assert_clean()
