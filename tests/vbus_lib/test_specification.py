"""Specification: device names, template matching and field decoding for every template."""

from __future__ import annotations

import json
import random
from importlib import resources

import pytest

from aiovbus.protocol import MAX_PACKET_FRAMES, Packet
from aiovbus.specification import (
    MAX_DECODER_LENGTHS,
    FieldSpec,
    FieldType,
    Part,
    Specification,
    Unit,
    UnitFamily,
    load_compact_json,
    localize,
)

from .conftest import reference_file

SPEC = Specification.bundled()
CELSIUS = Unit(62, UnitFamily.TEMPERATURE, "DegreesCelsius", " °C")
NO_UNIT = Unit(-1, UnitFamily.NONE, "None", "")


def reference_raw_value(field: FieldSpec, payload: bytes) -> float | int | None:
    """The reference algorithm (protocol reference §12.1), written out plainly."""
    end = len(payload)
    raw, valid = 0, False
    for part in field.parts:
        if part.offset < end:
            value = payload[part.offset]
            if part.signed and value >= 0x80:
                value -= 0x100
            if part.mask != 0xFF:
                value &= part.mask
            if part.bit_pos > 0:
                value >>= part.bit_pos
            raw += value * part.factor
            valid = True
    if not valid:
        return None
    if field.precision > 0:
        return raw * 10 ** (-field.precision)
    return raw


def field(parts: list[tuple[int, int, int, bool, int]], precision: int = 0) -> FieldSpec:
    return FieldSpec(
        "000_2_0",
        ("Name", "Name DE", ""),
        CELSIUS,
        precision,
        FieldType.NUMBER,
        tuple(Part(*part) for part in parts),
    )


@pytest.mark.parametrize(
    ("address", "language", "name"),
    [
        (0x0010, "en", "DFA"),
        (0x0015, "en", "Standard info"),
        (0x0015, "de", "Standard-Infos"),
        (0x0020, "en", "Computer"),
        (0x0053, "en", "DL3"),
        (0x7E11, "en", "DeltaSol MX [Controller]"),
        (0x7E11, "de", "DeltaSol MX [Regler]"),
        (0x7E11, "fr", "DeltaSol MX [Régulateur]"),
        (0x7E12, "en", "DeltaSol MX [Modules]"),
        (0x7E21, "en", "DeltaSol MX [Heating circuit #1]"),
        (0x7E31, "en", "DeltaSol MX [HQM #1]"),
        (0x7E31, "de", "DeltaSol MX [WMZ #1]"),
        (0x6651, "en", "EM #1"),
        (0x7A01, "en", "Unknown Device (0x7A01)"),
        (0x7E11, "xx", "DeltaSol MX [Controller]"),
    ],
)
def test_device_names(address: int, language: str, name: str) -> None:
    assert SPEC.device_name(address, 0x0010, language) == name
    assert SPEC.device_name(address, 0x0010, language) == name  # cached


def test_localize_falls_back_to_english_then_german() -> None:
    assert localize(("en", "de", ""), "fr") == "en"
    assert localize(("", "de", ""), "fr") == "de"
    assert localize(("en", "de", "fr"), "de") == "de"


def test_bundled_specification() -> None:
    assert SPEC.datecode == 20240922
    assert SPEC.packet_template_count == 360
    assert Specification.bundled() is SPEC
    assert SPEC.units[62] == CELSIUS
    assert SPEC.units[98].symbol == "%"


def test_template_matching_uses_masks() -> None:
    # 0x7E30/0xFFF0 covers all heat quantity meters of the MX.
    first = SPEC.decoder(0x0010, 0x7E31, 0x0100)
    fifth = SPEC.decoder(0x0010, 0x7E35, 0x0100)
    assert first is not None
    assert fifth is not None
    assert first.template is fifth.template
    assert first.template.matches(0x0010, 0x7E3F, 0x0100)
    assert not first.template.matches(0x0010, 0x7E41, 0x0100)
    assert SPEC.decoder(0x0010, 0x7E31, 0x0200) is None
    assert SPEC.decoder(0x2450, 0x7A01, 0x0000) is None
    assert SPEC.decoder_for(Packet(0x0010, 0x7E11, 0x0100)) is SPEC.decoder(0x0010, 0x7E11, 0x0100)


def test_decoding_signed_temperature() -> None:
    temperature = field([(0, 0, 0xFF, False, 1), (1, 0, 0xFF, True, 256)], precision=1)
    # 0xDD48 = -8888 -> -888.8000000000001 as the reference's float arithmetic gives.
    assert temperature.raw_value(bytes.fromhex("48dd")) == -888.8000000000001
    assert temperature.raw_value(bytes.fromhex("1300")) == 1.9000000000000001
    assert temperature.raw_value(bytes.fromhex("13")) == 1.9000000000000001  # partly present
    assert temperature.raw_value(b"") is None


def test_decoding_bit_flag_and_combined_counter() -> None:
    flag = field([(1, 2, 0x04, True, 1)])
    assert flag.raw_value(bytes.fromhex("00fc")) == 1
    assert flag.raw_value(bytes.fromhex("00fb")) == 0
    heat = SPEC.decoder(0x0010, 0x7E31, 0x0100)
    assert heat is not None
    payload = bytearray(40)
    payload[0:4] = (123456789).to_bytes(4, "little")
    payload[36:40] = (7).to_bytes(4, "little")
    assert heat.decode(bytes(payload))[0] == 7_000_000_000 + 123456789
    # Only the first 16 bytes present: the high word is absent, the low word still counts.
    assert heat.decode(bytes(payload[:16]))[0] == 123456789


def test_fields_beyond_the_frame_data_are_absent() -> None:
    decoder = SPEC.decoder(0x0010, 0x7E11, 0x0100)
    assert decoder is not None
    values = decoder.decode(bytes(100))
    by_id = dict(zip((f.field_id for f in decoder.fields), values, strict=True))
    assert by_id["104_4_0"] is None
    assert by_id["000_2_0"] == 0.0
    assert decoder.decode(b"") == (None,) * len(decoder.fields)


@pytest.mark.parametrize(
    ("field_type", "precision", "unit", "value", "text"),
    [
        (FieldType.NUMBER, 0, NO_UNIT, 12345.6789, "12346"),
        (FieldType.NUMBER, 2, NO_UNIT, 12345.6789, "12345.68"),
        (FieldType.NUMBER, 1, CELSIUS, 1.9000000000000001, "1.9 °C"),
        (FieldType.NUMBER, 1, CELSIUS, -888.8000000000001, "-888.8 °C"),
        (FieldType.NUMBER, 0, NO_UNIT, 2.5, "3"),
        (FieldType.NUMBER, 0, NO_UNIT, -0.5, "-1"),
        (FieldType.NUMBER, 3, NO_UNIT, 3.98, "3.980"),
        (FieldType.TIME, 0, NO_UNIT, 721, "12:01"),
        (FieldType.WEEKTIME, 0, NO_UNIT, 3 * 1440 + 721, "Th,12:01"),
        (FieldType.WEEKTIME, 0, NO_UNIT, 0, "Mo,00:00"),
        (FieldType.DATETIME, 0, NO_UNIT, 409418262, "12/22/2013 15:17:42"),
        (FieldType.DATETIME, 0, NO_UNIT, 414032776, "02/14/2014 01:06:16"),
    ],
)
def test_text_format(
    field_type: FieldType, precision: int, unit: Unit, value: float, text: str
) -> None:
    spec = FieldSpec("x", ("x", "", ""), unit, precision, field_type, ())
    assert spec.format(value) == text


def test_every_template_decodes_like_the_reference_algorithm() -> None:
    """Synthesised payloads of every length for every template in the VSF."""
    rng = random.Random(20240922)
    checked = 0
    for index in range(SPEC.packet_template_count):
        template = SPEC.packet_template_at(index)
        decoder = SPEC.decoder(template.destination, template.source, template.command)
        assert decoder is not None
        needed = max((f.bytes_needed for f in template.fields), default=0)
        full = min(508, -(-needed // 4) * 4)
        lengths = {0, full, max(0, full - 4), rng.randrange(0, full + 1, 4)}
        for length in sorted(lengths):
            for fill in ("random", "ff", "00", "80"):
                if fill == "random":
                    payload = rng.randbytes(length)
                else:
                    payload = bytes.fromhex(fill) * length
                expected = tuple(reference_raw_value(f, payload) for f in decoder.fields)
                values = decoder.decode(payload)
                assert values == expected, (template, length, fill)
                assert [type(v) for v in values] == [type(v) for v in expected]
                checked += 1
    assert checked >= 360 * 4


def test_golden_decode() -> None:
    """All 293 values of the reference decode of the first header set of 20140214."""
    golden = json.loads(reference_file("golden", "20140214-first-headerset.json").read_text())
    packets = {
        p["id"]: Packet(
            p["destination"], p["source"], p["command"], bytes.fromhex(p["frame_data_hex"])
        )
        for p in golden["packets"]
    }
    assert len(golden["fields"]) == 293
    for expected in golden["fields"]:
        decoder = SPEC.decoder_for(packets[expected["packet_id"]])
        assert decoder is not None
        ids = [f.field_id for f in decoder.fields]
        spec_field = decoder.fields[ids.index(expected["field_id"])]
        value = decoder.decode(packets[expected["packet_id"]].frame_data)[
            ids.index(expected["field_id"])
        ]
        assert value == expected["value"], expected
        assert spec_field.name() == expected["name"]
        assert spec_field.unit.code == expected["unit"]
        assert spec_field.precision == expected["precision"]
        assert spec_field.type.name.lower() == expected["type"].lower()
        assert (spec_field.format(value) if value is not None else "") == expected["text"]


def test_address_caches_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr("aiovbus.specification.CACHE_LIMIT", 3)
    data = resources.files("aiovbus").joinpath("data", "spec.json.gz")
    spec = Specification(load_compact_json(data.read_bytes()))
    for source in range(0x7E11, 0x7E19):
        spec.device_name(source)
        spec.decoder(0x0010, source, 0x0100)
    assert len(spec._device_names) <= 3
    assert len(spec._decoders) <= 3
    assert spec.device_name(0x7E11) == "DeltaSol MX [Controller]"


def test_decoders_are_shared_per_template(monkeypatch) -> None:
    """Forged addresses that wildcard templates match add no decoders and no compiled code.

    Random sources for the four templates with source mask 0x0000 (command 0x0200, to the
    modules 0x442x, 0x651x, 0x652x, 0x665x), each at three payload lengths: one decoder per
    template with three compiled functions, however many addresses; the address cache stays
    within its limit.
    """
    monkeypatch.setattr("aiovbus.specification.CACHE_LIMIT", 100)
    data = resources.files("aiovbus").joinpath("data", "spec.json.gz")
    spec = Specification(load_compact_json(data.read_bytes()))
    rng = random.Random(4)
    by_template: dict[int, set[int]] = {}
    for _ in range(2000):
        destination = rng.choice((0x4420, 0x6510, 0x6520, 0x6650)) | rng.randrange(16)
        decoder = spec.decoder(destination, rng.getrandbits(16), 0x0200)
        assert decoder is not None
        assert decoder.template.source_mask == 0x0000
        decoder.decode(bytes(rng.choice((8, 56, 508))))
        by_template.setdefault(id(decoder.template), set()).add(id(decoder))
    assert len(by_template) == 4
    assert all(len(decoders) == 1 for decoders in by_template.values())
    assert len(spec._template_decoders) == 4
    assert [len(d._by_length) for d in spec._template_decoders.values()] == [3, 3, 3, 3]
    assert len(spec._decoders) <= 100


def test_a_decoder_compiles_one_function_per_packet_length_at_most() -> None:
    """The bound SECURITY.md names: ``MAX_DECODER_LENGTHS`` functions per template's decoder."""
    data = resources.files("aiovbus").joinpath("data", "spec.json.gz")
    decoder = Specification(load_compact_json(data.read_bytes())).decoder(0x0010, 0x7E11, 0x0100)
    assert decoder is not None
    for frames in range(MAX_PACKET_FRAMES + 1):
        decoder.decode(bytes(4 * frames))
    assert len(decoder._by_length) == MAX_DECODER_LENGTHS == 128
    decoder.decode(bytes(3))  # no packet is this long: it makes room rather than grow
    assert len(decoder._by_length) == 1


def test_templates_that_match_block_type_headers() -> None:
    """A packet to 0x0015 with command 0x0100 that one of these matches is no block packet.

    The Tuxhorn BHKW's is the only template with destination 0x0015; the others take any
    destination. No template matches the DeltaSol MX's block packet (7E11 → 0015).
    """
    matching = [
        (f"{t.source:04X}/{t.source_mask:04X}", f"{t.destination_mask:04X}", len(t.fields))
        for t in (SPEC.packet_template_at(i) for i in range(SPEC.packet_template_count))
        if t.matches(0x0015, t.source, 0x0100)
    ]
    assert sorted(matching) == [
        ("105F/FFFF", "FFFF", 13),
        ("112E/FFFF", "0000", 14),
        ("4010/FFF0", "0000", 7),
        ("4420/FFF0", "0000", 10),
        ("6510/FFF0", "0000", 18),
        ("6520/FFF0", "0000", 6),
        ("6650/FFF0", "0000", 6),
    ]
    assert SPEC.decoder(0x0015, 0x7E11, 0x0100) is None


def _positional(spec_field: FieldSpec) -> bool:
    """Whether the field is a plain little-endian integer (or a single masked byte)."""
    parts = spec_field.parts
    if len(parts) == 1:
        return True
    return all(
        p.mask == 0xFF and p.bit_pos == 0 and p.factor == 256**i for i, p in enumerate(parts)
    )


def test_encode_then_decode_round_trips_for_every_template() -> None:
    rng = random.Random(7)
    checked = 0
    for index in range(SPEC.packet_template_count):
        for spec_field in SPEC.packet_template_at(index).fields:
            if not _positional(spec_field):
                continue
            source = rng.randbytes(508)
            value = spec_field.raw_value(source)
            assert value is not None
            payload = bytearray(508)
            spec_field.encode_into(payload, value)
            assert spec_field.raw_value(bytes(payload)) == value, spec_field
            checked += 1
    assert checked > 6000


def test_encode_known_values() -> None:
    temperature = field([(0, 0, 0xFF, False, 1), (1, 0, 0xFF, True, 256)], precision=1)
    payload = bytearray(4)
    temperature.encode_into(payload, -888.8)
    assert payload == bytearray.fromhex("48dd0000")
    flag = field([(1, 2, 0x04, True, 1)])
    payload = bytearray.fromhex("00fb")
    flag.encode_into(payload, 1)
    assert payload == bytearray.fromhex("00ff")
    flag.encode_into(payload, 0)
    assert payload == bytearray.fromhex("00fb")
