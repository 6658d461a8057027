"""Repository metadata: manifest.json, hacs.json and translations/en.json."""

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import homeassistant
from awesomeversion import AwesomeVersion
from homeassistant import const as ha_const
from packaging.requirements import Requirement

from custom_components.resol_vbus.const import DOMAIN

ROOT = Path(__file__).parents[1]
INTEGRATION = ROOT / "custom_components" / DOMAIN

MANIFEST_KEYS = {
    "domain",
    "name",
    "codeowners",
    "config_flow",
    "dhcp",
    "documentation",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "requirements",
    "usb",
    "version",
}
# Keys documented for hacs.json (render_readme is no longer valid).
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
}


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_manifest_keys_are_ordered_as_hassfest_wants() -> None:
    keys = list(load(INTEGRATION / "manifest.json"))

    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_has_exactly_the_expected_keys() -> None:
    assert set(load(INTEGRATION / "manifest.json")) == MANIFEST_KEYS


def test_manifest_values() -> None:
    manifest = load(INTEGRATION / "manifest.json")

    assert manifest["domain"] == DOMAIN == INTEGRATION.name
    assert AwesomeVersion(manifest["version"]).valid
    assert manifest["iot_class"] == "local_push"
    assert manifest["codeowners"]
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert manifest["issue_tracker"].startswith(manifest["documentation"])
    assert manifest["config_flow"] is (INTEGRATION / "config_flow.py").is_file()


def test_the_requirements_install_beside_this_home_assistant() -> None:
    """Home Assistant installs them with its own pins as constraints: every pin must fit.

    serialx is pinned by Home Assistant 2026.10 (1.11.0) and 2026.11 (1.15.1) and not by 2026.2,
    so the manifest asks for a range; each lane installs what that release would (its pin file).
    """
    constraints = {
        requirement.name: requirement
        for line in (Path(homeassistant.__file__).parent / "package_constraints.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip() and not line.startswith(("#", "-"))
        for requirement in [Requirement(line.split(";")[0])]
    }
    requirements = [
        Requirement(line) for line in load(INTEGRATION / "manifest.json")["requirements"]
    ]
    assert [requirement.name for requirement in requirements] == ["serialx"]
    for requirement in requirements:
        installed = version(requirement.name)
        assert requirement.specifier.contains(installed), installed
        if pin := constraints.get(requirement.name):
            (pinned,) = pin.specifier
            assert pinned.operator == "=="
            assert requirement.specifier.contains(pinned.version), pinned
            assert installed == pinned.version


def test_hacs_json_is_valid() -> None:
    hacs = load(ROOT / "hacs.json")

    assert set(hacs) <= HACS_KEYS
    assert hacs["name"] == load(INTEGRATION / "manifest.json")["name"]
    minimum = AwesomeVersion(hacs["homeassistant"])
    assert minimum.valid
    # The tests must run on a release the minimum admits: the oldest lane tests 2026.2.x.
    assert minimum <= AwesomeVersion(ha_const.__version__)


def test_english_translation_names_the_user_step() -> None:
    translations = load(INTEGRATION / "translations" / "en.json")

    assert translations["config"]["step"]["user"]["title"]
