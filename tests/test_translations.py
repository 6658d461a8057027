"""Translations: en.json and de.json agree, and the config flow uses only translated keys.

Custom integrations ship ``translations/*.json`` directly (no strings.json), so nothing checks
them at build time. :func:`assert_flow_result_translated` is applied to every flow result in
``test_config_flow.py``; with the flow fully covered, every key it shows is checked there, and
every placeholder of every text it shows is given.
"""

from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers.selector import SelectSelector

from custom_components.resol_vbus.const import DOMAIN

INTEGRATION = Path(__file__).parents[1] / "custom_components" / DOMAIN
TRANSLATIONS = INTEGRATION / "translations"
LANGUAGES = ("en", "de")

# Reasons Home Assistant's flow helpers abort with on the flow's behalf.
HELPER_ABORTS = {
    "already_configured",  # _abort_if_unique_id_configured
    "already_in_progress",  # async_set_unique_id
    "unique_id_mismatch",  # _abort_if_unique_id_mismatch
    "reauth_successful",  # async_update_reload_and_abort
    "reconfigure_successful",  # async_update_reload_and_abort
}


def load(language: str) -> dict[str, Any]:
    return json.loads((TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8"))


def leaves(tree: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Every string of a translation file by its key path."""
    found: dict[tuple[str, ...], str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= leaves(value, (*path, key))
        else:
            found[(*path, key)] = value
    return found


def placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name}


def flow_title(hass: HomeAssistant, result: FlowResult, section: str = "config") -> str | None:
    """The card title of the flow in progress that showed ``result``, as the frontend makes it.

    ``None`` when the flow's context has no title placeholders: then the frontend shows the
    integration's name. A placeholder the context lacks fails (the frontend would show
    "Translation [formatjs Error: MISSING_VALUE]" and log an error).
    """
    manager = hass.config_entries.flow if section == "config" else hass.config_entries.options
    context = manager.async_get(result["flow_id"])["context"]
    given = context.get("title_placeholders")
    if not given:
        return None
    text = load("en")[section].get("flow_title")
    assert text is not None, (section, given)
    assert placeholders(text) <= set(given), (text, given)
    return text.format(**given)


def assert_flow_result_translated(
    hass: HomeAssistant, result: FlowResult, section: str = "config"
) -> None:
    """Everything ``result`` shows has an English text (de.json mirrors en.json) and placeholders.

    The frontend fills a step's title, description and errors, and an abort's text, from the
    result's description placeholders, and the card title of a flow in progress from the title
    placeholders of its context (:func:`flow_title`).
    """
    texts = load("en")[section]
    kind = result["type"]
    given = set(result.get("description_placeholders") or {})
    if kind is FlowResultType.ABORT:
        assert result["reason"] in texts["abort"], result["reason"]
        assert placeholders(texts["abort"][result["reason"]]) <= given, result["reason"]
        return
    if kind is FlowResultType.CREATE_ENTRY:
        return
    flow_title(hass, result, section)
    step = texts["step"][result["step_id"]]
    assert step["title"]
    for part in ("title", "description"):
        assert placeholders(step.get(part, "")) <= given, (result["step_id"], part)
    if kind is FlowResultType.MENU:
        assert set(result["menu_options"]) <= set(step["menu_options"])
        return
    assert kind is FlowResultType.FORM
    for error in (result["errors"] or {}).values():
        assert error in texts["error"], error
        assert placeholders(texts["error"][error]) <= given, error
    for key, validator in result["data_schema"].schema.items():
        assert str(key) in step["data"], (result["step_id"], str(key))
        assert str(key) in step["data_description"], (result["step_id"], str(key))
        if isinstance(validator, SelectSelector) and validator.config.get("translation_key"):
            labels = load("en")["selector"][validator.config["translation_key"]]["options"]
            assert set(validator.config["options"]) <= set(labels)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translation_is_valid_json_with_non_empty_strings(language: str) -> None:
    strings = leaves(load(language))

    assert strings
    assert all(isinstance(text, str) and text.strip() for text in strings.values())


def test_german_has_exactly_the_english_keys() -> None:
    assert leaves(load("de")).keys() == leaves(load("en")).keys()


def test_german_uses_the_english_placeholders() -> None:
    english = leaves(load("en"))
    german = leaves(load("de"))

    for path, text in english.items():
        assert placeholders(german[path]) == placeholders(text), path


def test_every_field_of_a_step_has_a_description() -> None:
    for section in ("config", "options"):
        for step_id, step in load("en")[section]["step"].items():
            assert set(step.get("data", {})) == set(step.get("data_description", {})), step_id


def _flow_reasons() -> tuple[set[str], set[str]]:
    """The abort reasons and form errors written as literals in config_flow.py.

    Form errors are what ``_error_reason`` and ``_serial_error_reason`` return, what
    ``_ProbeError(reason=...)`` raises and what is assigned to ``errors[...]``; every other
    ``reason=`` is an abort.
    """
    tree = ast.parse((INTEGRATION / "config_flow.py").read_text(encoding="utf-8"))
    reasons: dict[bool, set[str]] = {True: set(), False: set()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            probe_error = isinstance(node.func, ast.Name) and node.func.id == "_ProbeError"
            reasons[probe_error] |= {
                keyword.value.value
                for keyword in node.keywords
                if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant)
            }
    aborts = reasons[False]
    functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and node.name in {"_error_reason", "_serial_error_reason"}
    ]
    assert len(functions) == 2
    errors = reasons[True] | {
        node.value.value
        for function in functions
        for node in ast.walk(function)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant)
    }
    errors |= {
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and any(
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and target.value.id == "errors"
            for target in node.targets
        )
    }
    return aborts, errors


def test_every_abort_and_error_of_the_flow_is_translated() -> None:
    aborts, errors = _flow_reasons()

    assert errors == {
        "cannot_connect",
        "invalid_auth",
        "invalid_host",
        "invalid_via_tag",
        "invalid_channel",
        "no_data",
        "unknown",
        "invalid_serial_port",
        "no_serial_data",
        "serial_permission",
        "serial_not_found",
        "serial_not_a_port",
        "serial_cannot_open",
    }
    assert "already_configured" in aborts
    for language in LANGUAGES:
        config = load(language)["config"]
        assert aborts | HELPER_ABORTS <= set(config["abort"]), language
        assert errors <= set(config["error"]), language


def test_no_translation_is_left_unused_by_the_flow() -> None:
    aborts, errors = _flow_reasons()
    config = load("en")["config"]

    assert set(config["abort"]) <= aborts | HELPER_ABORTS
    assert set(config["error"]) == errors


def test_step_ids_of_the_flow_are_translated() -> None:
    source = (INTEGRATION / "config_flow.py").read_text(encoding="utf-8")
    steps = set(re.findall(r"async def async_step_(\w+)\(", source))
    # Steps that only pass on to others show nothing of their own.
    shown = steps - {"reauth", "dhcp", "usb"}
    config_steps = set(load("en")["config"]["step"])

    assert shown - {"init"} <= config_steps
    assert "init" in load("en")["options"]["step"]
