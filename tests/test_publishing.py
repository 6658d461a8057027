"""Publishing readiness: the files hassfest and HACS check, and the quality-scale claims."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from custom_components.resol_vbus import services
from custom_components.resol_vbus.diagnostics import TO_REDACT

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "resol_vbus"
PLATFORMS = ("binary_sensor", "button", "number", "select", "sensor", "switch")
# Every rule of the Integration Quality Scale (shared/reference/home-assistant.md §2).
RULES = {
    "bronze": [
        "action-setup", "appropriate-polling", "brands", "common-modules",
        "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
        "docs-triggers", "docs-conditions", "docs-high-level-description",
        "docs-installation-instructions", "docs-removal-instructions", "entity-event-setup",
        "entity-unique-id", "has-entity-name", "runtime-data", "test-before-configure",
        "test-before-setup", "unique-config-entry",
    ],
    "silver": [
        "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
        "docs-installation-parameters", "entity-unavailable", "integration-owner",
        "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    ],
    "gold": [
        "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
        "docs-examples", "docs-known-limitations", "docs-supported-devices",
        "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
        "entity-category", "entity-device-class", "entity-disabled-by-default",
        "entity-translations", "exception-translations", "icon-translations",
        "reconfiguration-flow", "repair-issues", "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}  # fmt: skip
# Rules whose texts allow no exemption (their "Exceptions" sections, and home-assistant.md §2).
NO_EXEMPTION = {
    "dependency-transparency", "devices", "docs-use-cases", "entity-translations",
    "repair-issues",
}  # fmt: skip


def load_json(name: str) -> dict:
    return json.loads((INTEGRATION / name).read_text(encoding="utf-8"))


def test_quality_scale_lists_every_rule_honestly() -> None:
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    expected = {rule for tier in RULES.values() for rule in tier}
    assert set(rules) == expected
    for rule, status in rules.items():
        if isinstance(status, dict):  # exempt and todo need a reason; done may say how
            assert status["status"] in {"done", "exempt", "todo"}, rule
            assert len(status["comment"]) > 20, rule
            assert not (status["status"] == "exempt" and rule in NO_EXEMPTION), rule
        else:
            assert status == "done", rule


def test_done_rules_are_met_where_they_can_be_checked() -> None:
    for platform in PLATFORMS:  # parallel-updates
        tree = ast.parse((INTEGRATION / f"{platform}.py").read_text())
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "PARALLEL_UPDATES" in assigned, platform
    entity_source = (INTEGRATION / "entity.py").read_text()
    assert entity_source.count("_attr_has_entity_name = True") == 2  # has-entity-name
    assert "_attr_unique_id" in entity_source  # entity-unique-id
    assert {"password", "via_tag"} <= TO_REDACT  # diagnostics
    # common-modules: the coordinators are in coordinator.py, which imports no other module
    # of the integration that imports it back.
    coordinators = {
        (source.name, node.name)
        for source in INTEGRATION.glob("*.py")
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ClassDef)
        and any("DataUpdateCoordinator" in ast.unparse(base) for base in node.bases)
    }
    assert coordinators == {
        ("coordinator.py", "VBusCoordinator"),
        ("coordinator.py", "ValuesCoordinator"),
    }
    for module in _relative_imports("coordinator.py"):
        if (INTEGRATION / f"{module}.py").is_file():
            assert "coordinator" not in _relative_imports(f"{module}.py"), module
    assert "async_remove_config_entry_device" in (INTEGRATION / "__init__.py").read_text()
    manifest = load_json("manifest.json")
    assert manifest["codeowners"]  # integration-owner
    assert manifest["dhcp"] == [{"macaddress": "001E66*"}]  # discovery
    assert (INTEGRATION / "vbus" / "py.typed").is_file()  # strict-typing


def _relative_imports(name: str) -> set[str]:
    """The modules of the integration that ``name`` imports (also for type checking only)."""
    return {
        node.module
        for node in ast.walk(ast.parse((INTEGRATION / name).read_text()))
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }


def test_every_translation_key_used_in_code_is_translated() -> None:
    english = load_json("translations/en.json")
    german = load_json("translations/de.json")
    used = set()
    for source in INTEGRATION.glob("*.py"):
        used |= set(re.findall(r'translation_key="([a-z_]+)"', source.read_text()))
        used |= set(re.findall(r'_invalid\(key="([a-z_]+)"', source.read_text()))
    known = set(english["exceptions"]) | set(english["issues"])
    assert used <= known, used - known
    for language in (english, german):
        for key in used & set(english["exceptions"]):
            assert language["exceptions"][key]["message"]


def test_services_yaml_matches_the_schemas_and_translations() -> None:
    described = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    schemas = {
        services.SERVICE_GET_VALUE: services.GET_SCHEMA,
        services.SERVICE_SET_VALUE: services.SET_SCHEMA,
    }
    assert set(described) == set(schemas)
    icons = load_json("icons.json")
    for name, schema in schemas.items():
        fields = {str(key) for key in schema.schema}
        assert set(described[name]["fields"]) == fields, name
        assert icons["services"][name]["service"].startswith("mdi:")
        for language in ("en", "de"):
            texts = load_json(f"translations/{language}.json")["services"][name]
            assert texts["name"]
            assert texts["description"]
            assert set(texts["fields"]) == fields
            for field in fields:
                assert texts["fields"][field]["name"]
                assert texts["fields"][field]["description"]


def test_icons_refer_to_translated_entities() -> None:
    icons = load_json("icons.json")
    english = load_json("translations/en.json")
    for platform, keys in icons["entity"].items():
        for key, icon in keys.items():
            assert key in english["entity"][platform], (platform, key)
            assert icon["default"].startswith("mdi:")


def test_hacs_json_and_brand() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs == {"name": "RESOL VBus", "homeassistant": "2026.2.0"}
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        with Image.open(INTEGRATION / "brand" / name) as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"
    for name in ("LICENSE", "CHANGELOG.md", "README.md"):
        assert (ROOT / name).is_file()
    assert (ROOT / ".github" / "ISSUE_TEMPLATE" / "bug_report.yml").is_file()


@pytest.mark.parametrize("script", ["generate_translations", "generate_docs"])
def test_generated_files_are_up_to_date(script: str) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "scripts" / script), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "up to date\n"
