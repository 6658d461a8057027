"""Entity and device names as Home Assistant translations, generated from RESOL's specification.

RESOL's specification names every packet field and every device in English, German and French.
Home Assistant shows names through translation keys, in the user's language, so the names are
written into the translation files (``scripts/generate_translations``) and the entities and
devices carry only a key and placeholders.

Numbered families share one key: "Temperature sensor 1", "Temperature sensor 2" … are the key
``temperature_sensor_n`` with the text "Temperature sensor {number}" and the placeholder
``number``. Names whose numbers differ between the languages keep a key of their own, without
placeholders. A field in a packet to another device than the live-data destination (a DeltaSol
MX's packet to its extension module, say) gets the key's ``_for`` variant, "… ({peer})", so that
it does not share a name with the same field of the live packet.

The keys follow from the bundled specification alone, the same for the generator and at run
time. A key two different families would share (the same English text, other German or French
ones) gets a numbered suffix (``_2`` …) for all but the one most fields use.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

from .vbus.specification import LANGUAGES, Specification
from .vbus.units import is_flag

if TYPE_CHECKING:
    from collections.abc import Iterator

    from homeassistant.core import HomeAssistant

    from .vbus.specification import FieldSpec

type Names = tuple[str, str, str]  # en, de, fr as the specification has them

_NUMBER: Final = re.compile(r"\d+")
_NOT_KEY: Final = re.compile(r"[^a-z0-9]+")
#: The suffix of a field key's variant for packets to another device.
PEER_SUFFIX: Final = "_for"
#: The suffix of the key of a clock field's deviation sensor, and its texts around the name.
DEVIATION_SUFFIX: Final = "_deviation"
DEVIATION_TEXTS: Final = {"en": "{} deviation", "de": "{} Abweichung", "fr": "{} (écart)"}
PEER: Final = "peer"
#: The key of a device the specification does not know (placeholder ``address``).
UNKNOWN_DEVICE: Final = "unknown_device"
UNKNOWN_DEVICE_TEXTS: Final = {
    "en": "Unknown device (0x{address})",
    "de": "Unbekanntes Gerät (0x{address})",
    "fr": "Appareil inconnu (0x{address})",
}


@dataclass(frozen=True, slots=True)
class Name:
    """A translation key and its placeholders."""

    key: str
    placeholders: dict[str, str]


@dataclass(frozen=True, slots=True)
class Family:
    """Names that differ only in their numbers: one key, one text per language."""

    key: str
    texts: dict[str, str]  # language -> text with {number} … placeholders


def placeholder_names(count: int) -> list[str]:
    """``number``, ``number_2`` … for the ``count`` numbers of a name, in order."""
    return ["number" if position == 1 else f"number_{position}" for position in range(1, count + 1)]


def _with_placeholders(text: str) -> str:
    """``text`` with its numbers replaced by ``{number}``, ``{number_2}`` and so on."""
    parts = _NUMBER.split(text)
    slots = placeholder_names(len(parts) - 1)
    return "".join(
        part + (f"{{{slots[i]}}}" if i < len(slots) else "") for i, part in enumerate(parts)
    )


def _texts(names: Names) -> tuple[dict[str, str], tuple[str, ...]] | None:
    """The family texts and the numbers of ``names``; ``None`` if the numbers disagree."""
    en, de, fr = names
    numbers = _NUMBER.findall(en or de)
    texts: dict[str, str] = {}
    for language, text in zip(LANGUAGES, (en or de, de or en, fr or en or de), strict=True):
        if _NUMBER.findall(text) != numbers:
            return None
        texts[language] = _with_placeholders(text)
    return texts, tuple(numbers)


def slug(text: str) -> str:
    """A translation key from a text: lower-case ASCII, ``_`` between words, ``n`` for numbers."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"\{number(_\d+)?\}", " n ", ascii_text)
    return _NOT_KEY.sub("_", ascii_text.lower()).strip("_") or "name"


def _families(all_names: Iterator[Names]) -> dict[Names, tuple[Family, tuple[str, ...]]]:
    """Every distinct name triple → its family and its numbers; keys made unique."""
    found: dict[Names, tuple[dict[str, str], tuple[str, ...]]] = {}
    uses: dict[Names, int] = defaultdict(int)
    for names in all_names:
        uses[names] += 1
        if names not in found:
            # Numbers that differ between the languages: the name is a family of its own.
            en, de, fr = names
            literal = {"en": en or de, "de": de or en, "fr": fr or en or de}
            found[names] = _texts(names) or (literal, ())
    by_texts: dict[tuple[str, ...], int] = defaultdict(int)  # texts -> how many fields use them
    for names, (family_texts, _numbers) in found.items():
        by_texts[tuple(family_texts[language] for language in LANGUAGES)] += uses[names]
    by_slug: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for texts_key in by_texts:
        by_slug[slug(texts_key[0] or texts_key[1])].append(texts_key)
    families: dict[tuple[str, ...], Family] = {}
    for base, variants in by_slug.items():
        # The most used texts get the plain key ("Temperature sensor {number}" in the usual
        # translation), the others a suffix.
        ranked = sorted(variants, key=lambda texts_key: (-by_texts[texts_key], texts_key))
        for position, texts_key in enumerate(ranked):
            key = base if position == 0 else f"{base}_{position + 1}"
            families[texts_key] = Family(key, dict(zip(LANGUAGES, texts_key, strict=True)))
    return {
        names: (families[tuple(texts[language] for language in LANGUAGES)], numbers)
        for names, (texts, numbers) in found.items()
    }


def _field_names(spec: Specification) -> Iterator[Names]:
    for index in range(spec.packet_template_count):
        for spec_field in spec.packet_template_at(index).fields:
            yield spec_field.names


@cache
def field_families() -> dict[Names, tuple[Family, tuple[str, ...]]]:
    """The families of every field name of the bundled specification."""
    return _families(_field_names(Specification.bundled()))


@cache
def device_families() -> dict[Names, tuple[Family, tuple[str, ...]]]:
    """The families of every device name of the bundled specification."""
    spec = Specification.bundled()
    return _families(
        spec.device_template_names(index) for index in range(spec.device_template_count)
    )


def _name(families: dict[Names, tuple[Family, tuple[str, ...]]], names: Names) -> Name | None:
    found = families.get(names)
    if found is None:
        return None
    family, numbers = found
    return Name(family.key, dict(zip(placeholder_names(len(numbers)), numbers, strict=True)))


def field_name(spec_field: FieldSpec, peer: str | None = None) -> Name | None:
    """The key of a field's name (``None``: not from the bundled specification).

    With ``peer`` (the name of the device a packet is sent to, if not the live-data
    destination) the ``_for`` variant.
    """
    name = _name(field_families(), spec_field.names)
    if name is None or peer is None:
        return name
    return Name(name.key + PEER_SUFFIX, {**name.placeholders, PEER: peer})


def device_name(names: Names | None, address: int) -> Name:
    """The key of a device's name (its specification names, ``None`` for an unknown device)."""
    name = None if names is None else _name(device_families(), names)
    return name or Name(UNKNOWN_DEVICE, {"address": f"{address:04X}"})


#: Roles in a device name (its part in brackets) that mean the product itself.
_PRODUCT_ROLES: Final = frozenset({"", "Controller", "Regler"})


def model(spec_names: Names) -> str:
    """A device's model from its English name, without numbers.

    "DeltaSol MX" for "DeltaSol MX [Controller]", "DeltaSol MX HQM" for "DeltaSol MX [HQM #1]".
    """
    product, _bracket, role = (spec_names[0] or spec_names[1]).partition(" [")
    role = " ".join(_NUMBER.sub("", role.rstrip("]")).replace("#", " ").split())
    return product if role in _PRODUCT_ROLES else f"{product} {role}"


def language(hass: HomeAssistant) -> str:
    """Home Assistant's language if the specification has it, else English (for placeholders)."""
    wanted = hass.config.language.partition("-")[0]
    return wanted if wanted in LANGUAGES else "en"


def platform_of(spec_field: FieldSpec) -> str:
    """The platform a field's entity belongs to."""
    return "binary_sensor" if is_flag(spec_field) else "sensor"
