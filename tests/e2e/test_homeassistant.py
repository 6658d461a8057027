"""The integration in a real Home Assistant process, against the emulator, and in Chromium.

Home Assistant is onboarded and the emulator (a DL3 with a DeltaSol MX system on channel 1) is
added through Home Assistant's HTTP API with the integration's real config flow; the states are
compared with what the library decodes from the emulator's packets; a select entity changes a
value in the emulated controller; Chromium logs in and shows the controller's device page
(screenshot: ``artifacts/e2e-device-page.png``); the recorder, history, the logbook and Energy
are loaded and take the heat quantities for the Energy dashboard; and Home Assistant's log holds
nothing against the integration (see ``conftest.complaints``).

Then in German (Home Assistant's language and the demo user's): after a reload of the entry the
controller's sensors and settings have German names, as Chromium shows them on the device page
(``artifacts/e2e-device-page-de.png``); and when the device's password changes, the
re-authentication card on the integrations page reads without translation errors
(``artifacts/e2e-reauth-card.png``) and re-authenticating brings the entry back. Those tests come
last: they change the language and the password. Run with ``scripts/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from custom_components.resol_vbus.vbus.catalog import ValueKind, catalogs
from custom_components.resol_vbus.vbus.specification import FieldType, Specification
from custom_components.resol_vbus.vbus.units import field_semantics, is_sentinel

from .browser import BrowserError, Chromium, find_chromium
from .conftest import ARTIFACTS, Background, RunningHass, demo

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from custom_components.resol_vbus.vbus.emulator import Emulator
    from custom_components.resol_vbus.vbus.protocol import Packet

pytestmark = pytest.mark.e2e

BROADCAST = 0x0010
MX = 0x7E11
CONTROLLER = "DeltaSol MX [Controller]"
TEMPERATURE_1 = f"{CONTROLLER} Temperature sensor 1"
RELAY_1_MODE = "select.deltasol_mx_controller_relay_1_manual_mode"
RELAY_1_VALUE_ID = "Relais_Regler_R1_Handbetrieb"
SCREENSHOT = ARTIFACTS / "e2e-device-page.png"
# In German: Home Assistant's language and the demo user's (the frontend follows the user's).
GERMAN_CONTROLLER = "DeltaSol MX [Regler]"
GERMAN_TEMPERATURE_1 = f"{GERMAN_CONTROLLER} Temperatur Sensor 1"
GERMAN_RELAY_1_MODE = f"{GERMAN_CONTROLLER} Handbetrieb Relais 1"
# The demo user's profile language as the frontend's profile page saves it.
GERMAN_PROFILE = {
    "language": "de",
    "number_format": "language",
    "time_format": "language",
    "date_format": "language",
    "time_zone": "local",
    "first_weekday": "language",
}
SCREENSHOT_GERMAN = ARTIFACTS / "e2e-device-page-de.png"
SCREENSHOT_REAUTH = ARTIFACTS / "e2e-reauth-card.png"
# The device's password after it was changed (re-authentication).
NEW_PASSWORD = "changed-on-the-device"
# What a translation that cannot be formatted shows (formatjs) or logs.
TRANSLATION_ERROR = re.compile(r"translation|formatjs|MISSING_VALUE", re.IGNORECASE)


def decoded_numbers(packets: tuple[Packet, ...], language: str = "en") -> dict[str, float]:
    """Entity name (device and field, as Home Assistant shows it) → decoded number, as shown.

    Names in ``language``, from the specification; heat quantities (counted in Wh) show in kWh.
    """
    spec = Specification.bundled()
    numbers: dict[str, float] = {}
    for packet in packets:
        decoder = spec.decoder_for(packet)
        assert decoder is not None
        device = spec.device_name(packet.source, packet.destination, language)
        for spec_field, value in zip(
            decoder.fields, decoder.decode(packet.frame_data), strict=True
        ):
            if spec_field.type != FieldType.NUMBER or value is None:
                continue
            if is_sentinel(spec_field, value):
                continue  # "no sensor": the state is unknown
            name = spec_field.name(language)
            if packet.destination != BROADCAST:
                peer = spec.device_name(packet.destination, packet.source, language)
                name = f"{name} ({peer})"
            number = round(value, max(spec_field.precision, 0))
            if field_semantics(spec_field).unit == "Wh":
                number /= 1000
            numbers[f"{device} {name}"] = number
    return numbers


def wait_for_states(
    background: Background,
    hass: RunningHass,
    ready: Callable[[dict[str, dict[str, Any]]], bool],
    timeout: float = 60.0,
) -> dict[str, dict[str, Any]]:
    """Poll the states (REST API) until ``ready`` accepts them; the states."""
    deadline = time.monotonic() + timeout
    while True:
        states = background.run(hass.api.states())
        if ready(states):
            return states
        assert time.monotonic() < deadline, "timed out waiting for the states"
        time.sleep(0.5)


def by_name(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The states by friendly name."""
    return {state["attributes"].get("friendly_name"): state for state in states.values()}


def temperature_known(states: dict[str, dict[str, Any]], name: str = TEMPERATURE_1) -> bool:
    """Whether the states have a value of the controller's temperature sensor 1 (``name``)."""
    state = by_name(states).get(name, {}).get("state")
    return state not in (None, "unavailable", "unknown")


def wait_until_loaded(background: Background, hass: RunningHass, timeout: float = 60.0) -> None:
    """Wait until the (only) entry of the integration is loaded."""
    deadline = time.monotonic() + timeout
    while [item["state"] for item in background.run(hass.api.entries())] != ["loaded"]:
        assert time.monotonic() < deadline, "the entry did not load"
        time.sleep(0.5)


def reload_entry(background: Background, hass: RunningHass, entry: dict[str, Any]) -> None:
    """Unload the entry and set it up again; wait until it is loaded."""
    entry_id = entry["result"]["entry_id"]
    background.run(hass.api.request("POST", f"/api/config/config_entries/entry/{entry_id}/reload"))
    wait_until_loaded(background, hass)


def use_german(background: Background, hass: RunningHass) -> None:
    """Home Assistant's language (names of entities and devices) and the demo user's: German."""
    background.run(hass.api.command({"type": "config/core/update", "language": "de"}))
    background.run(
        hass.api.command(
            {"type": "frontend/set_user_data", "key": "language", "value": GERMAN_PROFILE}
        )
    )


def chromium_page(
    background: Background,
    hass: RunningHass,
    profile: Path,
    page: str,
    texts: tuple[str, ...],
    screenshot: Path,
    logged_in: str = "Settings",
    size: tuple[int, int] = (1280, 2600),
) -> str:
    """Log in as the demo user with Chromium, open ``page`` and wait until it shows ``texts``.

    Its text; the page (``size`` in pixels) is saved to ``screenshot`` as it is, also when it
    does not show them. ``logged_in`` is a text of the sidebar (in the user's language).
    """
    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (scripts/e2e installs the Debian package)")
    url = hass.api.url
    screenshot.unlink(missing_ok=True)
    shots: list[bytes] = []

    async def browse(browser: Chromium) -> str:
        async with aiohttp.ClientSession() as session:
            await browser.connect(session)
            try:
                await browser.navigate(f"{url}/")  # the frontend sends us to its login page
                await browser.type_into("username", demo.DEMO_USER)
                await browser.type_into("password", demo.DEMO_PASSWORD)
                await browser.press_enter()
                await browser.wait_for_text(logged_in)
                await browser.navigate(f"{url}{page}")
                await browser.wait_for_text(*texts)
                await asyncio.sleep(1)  # let icons and late cards render
                return await browser.text()
            finally:  # the page as it is, also when the test failed
                with contextlib.suppress(BrowserError):
                    shots.append(await browser.screenshot())
                await browser.close()

    browser = Chromium(binary, profile, size=size)
    browser.start()
    try:
        text = background.run(browse(browser))
    finally:
        browser.stop()
        if shots:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(shots[0])
    assert shots[0].startswith(b"\x89PNG")
    return text


def device_page(background: Background, hass: RunningHass, entity_id: str) -> str:
    """The path of the device page of ``entity_id``'s device."""
    device_id = background.run(hass.api.template(f"{{{{ device_id('{entity_id}') }}}}"))
    return f"/config/devices/device/{device_id}"


def stored_value(background: Background, emulator: Emulator, value_id: str) -> int:
    """A value of the emulated controller's parameter store (read on the emulator's loop)."""

    async def read() -> int:
        return emulator.controller(1).store[value_id].value

    return background.run(read())


def test_config_flow_adds_the_dl3_channel(
    background: Background, hass: RunningHass, entry: dict[str, Any]
) -> None:
    assert entry["type"] == "create_entry"
    assert entry["title"].startswith("DeltaSol MX via ")
    assert entry["title"].endswith(" channel 1")
    assert_the_only_entry_is_loaded(background, hass, entry)


def assert_the_only_entry_is_loaded(
    background: Background, hass: RunningHass, entry: dict[str, Any]
) -> None:
    """Home Assistant has ``entry`` (a config flow's result), loaded, and no other entry."""
    entries = background.run(hass.api.entries())
    assert [(item["title"], item["state"]) for item in entries] == [(entry["title"], "loaded")]


def test_sensor_states_equal_the_decoded_values(
    background: Background,
    hass: RunningHass,
    entry: dict[str, Any],
    snapshot: tuple[Packet, ...],
) -> None:
    assert_sensor_states_equal_the_decoded_values(background, hass, snapshot)


def assert_sensor_states_equal_the_decoded_values(
    background: Background, hass: RunningHass, snapshot: tuple[Packet, ...]
) -> None:
    """Every enabled sensor of the snapshot's values shows its decoded number."""
    expected = decoded_numbers(snapshot)
    states = by_name(wait_for_states(background, hass, temperature_known))
    compared = {}
    for name, value in expected.items():
        state = states.get(name)
        if state is None or not state["entity_id"].startswith("sensor."):
            continue  # disabled by default, or a flag (binary sensor)
        compared[name] = (state["state"], value)
        assert float(state["state"]) == pytest.approx(value), name
    # Every moving kind of value of the synthetic system is there, on every device.
    assert len(compared) >= 40, compared
    assert float(states[TEMPERATURE_1]["state"]) == expected[TEMPERATURE_1]
    assert states[TEMPERATURE_1]["attributes"]["unit_of_measurement"] == "°C"


def choose_relay_1_mode(
    background: Background, hass: RunningHass, emulator: Emulator, option: str, raw: int
) -> None:
    """Choose ``option`` (``raw`` in the controller) from auto; wait until both show it."""
    # The controller's values are read over the bus a few seconds after the entry is set up.
    wait_for_states(
        background, hass, lambda states: states.get(RELAY_1_MODE, {}).get("state") == "auto"
    )
    assert stored_value(background, emulator, RELAY_1_VALUE_ID) == 2  # auto

    background.run(
        hass.api.request(
            "POST",
            "/api/services/select/select_option",
            json={"entity_id": RELAY_1_MODE, "option": option},
        )
    )

    deadline = time.monotonic() + 30
    while stored_value(background, emulator, RELAY_1_VALUE_ID) != raw:
        assert time.monotonic() < deadline, "the controller did not get the new value"
        time.sleep(0.2)
    wait_for_states(
        background, hass, lambda states: states[RELAY_1_MODE]["state"] == option, timeout=30
    )


def test_relay_manual_mode_select_writes_the_controller(
    background: Background, hass: RunningHass, entry: dict[str, Any], emulator: Emulator
) -> None:
    choose_relay_1_mode(background, hass, emulator, "on", 4)


def test_device_page_in_chromium(
    background: Background,
    hass: RunningHass,
    entry: dict[str, Any],
    snapshot: tuple[Packet, ...],
    tmp_path: Path,
) -> None:
    temperature = f"{decoded_numbers(snapshot)[TEMPERATURE_1]:.1f} °C"
    entity = next(
        state["entity_id"]
        for state in background.run(hass.api.states()).values()
        if state["attributes"].get("friendly_name") == TEMPERATURE_1
    )
    text = chromium_page(
        background,
        hass,
        tmp_path / "chromium",
        device_page(background, hass, entity),
        (CONTROLLER, "Temperature sensor 1", temperature),
        SCREENSHOT,
    )
    assert CONTROLLER in text
    assert temperature in text


def test_recorder_history_logbook_and_energy_are_loaded(
    background: Background, hass: RunningHass, entry: dict[str, Any]
) -> None:
    # What the README's Energy dashboard section and the demo's history and logbook need.
    config = background.run(hass.api.request("GET", "/api/config"))
    assert {"recorder", "history", "logbook", "energy"} <= set(config["components"])


def test_heat_quantities_are_valid_for_the_energy_dashboard(
    background: Background, hass: RunningHass, entry: dict[str, Any]
) -> None:
    # As the README says: add them under Energy → Individual devices; Home Assistant's own
    # validation (the dashboard's warnings) has nothing against them.
    def energy(states: dict[str, dict[str, Any]]) -> list[str]:
        return sorted(
            entity_id
            for entity_id, state in states.items()
            if entity_id.startswith("sensor.")
            and state["attributes"].get("device_class") == "energy"
            and state["state"] not in ("unavailable", "unknown")
        )

    sensors = energy(wait_for_states(background, hass, energy))
    devices = [{"stat_consumption": entity_id} for entity_id in sensors]
    background.run(hass.api.command({"type": "energy/save_prefs", "device_consumption": devices}))
    result = background.run(hass.api.command({"type": "energy/validate"}))
    issues = dict(zip(sensors, result["device_consumption"], strict=True))
    # Statistics exist once the recorder compiles them, every 5 minutes: not yet.
    assert {
        entity_id: [issue for issue in found if issue["type"] != "statistics_not_defined"]
        for entity_id, found in issues.items()
    } == {entity_id: [] for entity_id in sensors}


def test_home_assistant_does_not_complain_about_the_integration(
    background: Background, hass: RunningHass, entry: dict[str, Any]
) -> None:
    # Unloading and setting up again, too (shutting down is checked when the process stopped).
    reload_entry(background, hass, entry)
    wait_for_states(background, hass, temperature_known)
    assert hass.complaints() == []


# -- in German, and a changed password (these change the language and the password: last) ------


def test_names_are_german_in_german(
    background: Background,
    hass: RunningHass,
    entry: dict[str, Any],
    snapshot: tuple[Packet, ...],
    tmp_path: Path,
) -> None:
    before = set(background.run(hass.api.states()))
    use_german(background, hass)
    reload_entry(background, hass, entry)  # names are given when the entities are added

    def ready(states: dict[str, dict[str, Any]]) -> bool:  # the settings are read after setup
        names = by_name(states)
        return temperature_known(states, GERMAN_TEMPERATURE_1) and GERMAN_RELAY_1_MODE in names

    by_id = wait_for_states(background, hass, ready)
    assert before <= set(by_id)  # entity ids do not change with the language
    states = by_name(by_id)
    # Every sensor of the system under the specification's German name, with its value.
    sensors = {
        name: value
        for name, value in decoded_numbers(snapshot, "de").items()
        if states.get(name, {}).get("entity_id", "").startswith("sensor.")
    }
    assert len(sensors) >= 40, sorted(states)
    for name, value in sensors.items():
        assert float(states[name]["state"]) == pytest.approx(value), name
    # Every setting of the controller under the catalog's German name.
    german = {
        f"{GERMAN_CONTROLLER} {value.name('de')}"
        for catalog in catalogs()
        if catalog.address == MX
        for value in catalog.values
        if value.kind != ValueKind.CLOCK
    }
    settings = {
        name
        for name, state in states.items()
        if state["entity_id"].partition(".")[0] in ("select", "number", "switch")
    }
    assert GERMAN_RELAY_1_MODE in settings
    assert settings <= german, settings - german
    # Nothing of the entry is left in English.
    english = [name for name in states if name and "[Controller]" in name]
    assert not english

    # The device page in Chromium, in the user's language: German.
    text = chromium_page(
        background,
        hass,
        tmp_path / "chromium",
        device_page(background, hass, states[GERMAN_TEMPERATURE_1]["entity_id"]),
        (GERMAN_CONTROLLER, "Temperatur Sensor 1", "Handbetrieb Relais 1", "Sensoren"),
        SCREENSHOT_GERMAN,
        logged_in="Einstellungen",
    )
    assert "Temperature sensor 1" not in text


def reauth_flows(background: Background, hass: RunningHass) -> list[dict[str, Any]]:
    """The integration's re-authentication flows in progress."""
    flows = background.run(hass.api.command({"type": "config_entries/flow/progress"}))
    return [
        flow
        for flow in flows
        if flow["handler"] == demo.DOMAIN and flow["context"].get("source") == "reauth"
    ]


def test_reauthentication_card_in_chromium(
    background: Background,
    hass: RunningHass,
    entry: dict[str, Any],
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    use_german(background, hass)  # (as the test before left it)

    async def change_password() -> None:
        emulator.password = NEW_PASSWORD
        await emulator.reboot()  # the integration reconnects with the stored password

    background.run(change_password())
    deadline = time.monotonic() + 60
    while not (flows := reauth_flows(background, hass)):
        assert time.monotonic() < deadline, "no re-authentication was started"
        time.sleep(0.5)

    text = chromium_page(
        background,
        hass,
        tmp_path / "chromium",
        "/config/integrations/dashboard",
        ("Neu konfigurieren",),  # the card's button
        SCREENSHOT_REAUTH,
        logged_in="Einstellungen",
        size=(1280, 600),  # the card is at the top
    )
    assert not TRANSLATION_ERROR.search(text), text
    assert f"{entry['title']} RESOL VBus Neu konfigurieren" in text  # title, integration, button
    logged = [line for line in hass.log.splitlines() if " ERROR " in line]
    assert not [line for line in logged if TRANSLATION_ERROR.search(line)]

    # Re-authenticating with the device's new password brings the entry back.
    path = f"/api/config/config_entries/flow/{flows[0]['flow_id']}"
    result = background.run(hass.api.request("POST", path, json={"password": NEW_PASSWORD}))
    assert (result["type"], result["reason"]) == ("abort", "reauth_successful")
    wait_until_loaded(background, hass)
    wait_for_states(background, hass, partial(temperature_known, name=GERMAN_TEMPERATURE_1))
    assert not reauth_flows(background, hass)


def test_no_errors_logged_by_the_integration(hass: RunningHass, entry: dict[str, Any]) -> None:
    errors = [line for line in hass.log.splitlines() if " ERROR " in line and "resol_vbus" in line]
    assert not errors
