"""Property-based fuzzing of the VSF parser and the specification built from it (issue 8, §1).

Inputs: specification files generated in memory (tables of any size, indices and offsets in
and out of range, any precision, type and part values), the same with their table offsets and
counts scrambled (truncated and overlapping tables, offsets outside the file), and the real
``test.vsf`` mutated and sealed again (length and CRC fixed, so that the parser gets past
them). See :func:`~.harness.vsf_target` for the invariants.
"""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiovbus.errors import SpecificationError
from aiovbus.specification import (
    FieldSpec,
    FieldType,
    Part,
    Specification,
    Unit,
    UnitFamily,
)
from aiovbus.vsf import parse_vsf
from tests.vbus_lib.conftest import reference_file
from tests.vbus_lib.test_vsf import HEADER, SPEC_BLOCK, TEXTS, UNITS, build_vsf, make_vsf, seal

from .conftest import fuzz
from .harness import vsf_target
from .strategies import mutate, mutations

I8 = st.integers(min_value=-128, max_value=127)
I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
U16 = st.integers(min_value=0, max_value=0xFFFF)


def _mostly(valid: st.SearchStrategy[int], other: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    """``valid`` nine times in ten, else ``other`` (so that most files get deep into the parser)."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: valid if n else other)


def _index(size: int) -> st.SearchStrategy[int]:
    """Mostly a valid index into a table of ``size`` entries, sometimes any number."""
    return _mostly(st.integers(min_value=0, max_value=max(size - 1, 0)), I32)


def _text(extra: str | bytes) -> str | bytes:
    return extra.replace("\0", "") if isinstance(extra, str) else extra.replace(b"\0", b"")


@st.composite
def specifications(draw: st.DrawFn) -> bytes:
    """A sealed VSF with random tables."""
    extra_texts = st.one_of(st.text(max_size=12), st.binary(max_size=6)).map(_text)
    texts = [*TEXTS, *draw(st.lists(extra_texts, max_size=6))]
    localized = draw(st.lists(st.tuples(*[_index(len(texts))] * 3), min_size=1, max_size=4))
    unit = st.tuples(
        _mostly(st.sampled_from((62, 1, 70)), I32),
        _mostly(st.integers(min_value=-1, max_value=6), I32),
        _index(len(texts)),
        _index(len(texts)),
    )
    units = [*UNITS, *draw(st.lists(unit, max_size=3))]
    part = st.tuples(
        _mostly(st.integers(min_value=0, max_value=40), I32),
        _mostly(st.integers(min_value=0, max_value=7), I8),
        st.sampled_from((0xFF, 0x0F, 0x80, 0x01, 0)) | st.integers(min_value=0, max_value=255),
        _mostly(st.integers(min_value=0, max_value=1), I8),
        st.sampled_from((1, 256, 65536, 16777216, 10, -1))
        | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    )
    field = st.tuples(
        _index(len(texts)),
        _index(len(localized)),
        _mostly(st.sampled_from([unit[0] for unit in units]), I32),
        _mostly(st.integers(min_value=-2, max_value=10), I32),
        _mostly(st.integers(min_value=1, max_value=5), I32),
        st.lists(part, max_size=5),
    )
    devices = draw(st.lists(st.tuples(U16, U16, U16, U16, _index(len(localized))), max_size=3))
    packet = st.tuples(U16, U16, U16, U16, U16, st.lists(field, max_size=4))
    packets = draw(st.lists(packet, max_size=3))
    return make_vsf(texts=texts, localized=localized, units=units, devices=devices, packets=packets)


@fuzz(100)
@given(specifications())
def test_generated_specifications(data: bytes) -> None:
    vsf_target(data)


@fuzz(80)
@given(
    specifications(),
    st.lists(st.tuples(st.integers(min_value=0, max_value=9), I32), min_size=1, max_size=4),
)
def test_scrambled_table_offsets_and_counts(data: bytes, changes) -> None:
    """Tables cut short, overlapping, or outside the file; the file sealed again."""
    buf = bytearray(data)
    offset = HEADER.unpack_from(buf)[4]
    block = list(SPEC_BLOCK.unpack_from(buf, offset))
    for position, value in changes:
        block[1 + position] = value
    SPEC_BLOCK.pack_into(buf, offset, *block)
    vsf_target(seal(buf))


@fuzz(60)
@given(specifications(), mutations)
def test_mutated_generated_specifications(data: bytes, operations) -> None:
    vsf_target(seal(bytearray(mutate(data, operations))))


@fuzz(30)
@given(mutations)
def test_mutated_reference_test_vsf(operations) -> None:
    data = reference_file("test.vsf").read_bytes()
    vsf_target(seal(bytearray(mutate(data, operations))))


@fuzz(40)
@given(st.binary(max_size=200), mutations)
def test_unsealed_garbage_is_rejected(data: bytes, operations) -> None:
    with pytest.raises(SpecificationError):
        parse_vsf(mutate(data, operations))


def test_reference_test_vsf_truncated_anywhere_and_sealed() -> None:
    data = reference_file("test.vsf").read_bytes()
    assert vsf_target(data) == 2
    for end in range(HEADER.size, len(data), 97):
        vsf_target(seal(bytearray(data[:end])))


def test_real_specification_passes_the_target() -> None:
    """The full VSF: every template decodes payloads of 0, 4, 256 and 508 bytes and formats them."""
    data = reference_file("vbus_specification.vsf").read_bytes()
    assert vsf_target(data, (bytes(range(256)) * 2,)) == 360


# -- findings ---------------------------------------------------------------------------------

FIELD = struct.Struct("<7i")
PART = struct.Struct("<ibBbBq")
PACKET = struct.Struct("<6Hii")


def _shared_tables(packets: int, fields: int, parts: int) -> bytes:
    """A VSF whose packet templates all use one field table whose fields all use one part table.

    Each table lies inside the file, so every bounds check passes, but the parser would
    materialise ``packets × fields × parts`` parts from a file of a few kilobytes.
    """
    buf, layout = build_vsf(
        packets=[(0x0010, 0xFFFF, 0x7E11, 0xFFFF, 0x0100, [(8, 1, 62, 1, 1, [(0, 0, 255, 0, 1)])])]
    )
    trailer = len(buf)
    buf += bytes(PACKET.size * packets + FIELD.size * fields + PART.size * parts)
    part_table = trailer + PACKET.size * packets + FIELD.size * fields
    field_table = trailer + PACKET.size * packets
    for index in range(parts):
        PART.pack_into(buf, part_table + index * PART.size, 0, 0, 0xFF, 0, 0, 1)
    for index in range(fields):
        FIELD.pack_into(buf, field_table + index * FIELD.size, 8, 1, 62, 1, 1, parts, part_table)
    for index in range(packets):
        PACKET.pack_into(
            buf,
            trailer + index * PACKET.size,
            0x10,
            0xFFFF,
            index,
            0xFFFF,
            0x100,
            0,
            fields,
            field_table,
        )
    block = list(SPEC_BLOCK.unpack_from(buf, layout["spec"]))
    block[9], block[10] = packets, trailer
    SPEC_BLOCK.pack_into(buf, layout["spec"], *block)
    return seal(buf)


def test_tables_shared_to_amplify_a_small_file_are_rejected() -> None:
    """Finding: a 65 KB file made the parser build 10⁹ parts (memory and time without bound)."""
    data = _shared_tables(packets=1000, fields=1000, parts=1000)
    assert len(data) == 64_344
    started = time.perf_counter()
    with pytest.raises(SpecificationError) as info:
        parse_vsf(data)
    assert time.perf_counter() - started < 1.0
    assert str(info.value) == "VSF tables and texts take more than 4 times the file's size"


def test_texts_shared_to_amplify_a_small_file_are_rejected() -> None:
    """The same with one long text referenced by every entry of the text table."""
    buf, layout = build_vsf(texts=[*TEXTS, "x" * 20_000])
    text_table = len(buf)
    buf += struct.pack("<i", layout["strings"] + sum(len(t.encode()) + 1 for t in TEXTS)) * 5000
    block = list(SPEC_BLOCK.unpack_from(buf, layout["spec"]))
    block[1], block[2] = 5000, text_table
    SPEC_BLOCK.pack_into(buf, layout["spec"], *block)
    with pytest.raises(SpecificationError) as info:
        parse_vsf(seal(buf))
    assert str(info.value) == "VSF tables and texts take more than 4 times the file's size"


def test_modest_table_sharing_still_loads() -> None:
    """Sharing within the budget is accepted (the real files share nothing: they use 99 %)."""
    spec = Specification(parse_vsf(_shared_tables(packets=3, fields=2, parts=2)))
    assert spec.packet_template_count == 3
    assert [len(spec.packet_template_at(i).fields) for i in range(3)] == [2, 2, 2]


def _one_field(precision: int, type_id: int = 1) -> bytes:
    """A VSF with one 64-bit unsigned field."""
    parts = [(offset, 0, 0xFF, 0, 1 << 8 * offset) for offset in range(8)]
    field = (8, 1, 62, precision, type_id, parts)
    return make_vsf(packets=[(0x0010, 0xFFFF, 0x7E11, 0xFFFF, 0x0100, [field])])


@pytest.mark.parametrize("precision", [11, 29, 400, 2**31 - 1])
def test_precision_beyond_ten_places_is_rejected(precision: int) -> None:
    """Finding: precision 29 and above made ``format()`` raise ``decimal.InvalidOperation``."""
    with pytest.raises(SpecificationError) as info:
        parse_vsf(_one_field(precision))
    assert str(info.value) == f"VSF field '000_2_0' has precision {precision} (at most 10)"


@pytest.mark.parametrize(
    ("precision", "text"),
    [
        (10, "1844674407.3709552288 °C"),  # the float 18446744073709551615e-10, to 10 places
        (0, "18446744073709551615 °C"),
        (-(2**31), "18446744073709551615 °C"),
    ],
)
def test_extreme_accepted_precisions_format(precision: int, text: str) -> None:
    spec = Specification(parse_vsf(_one_field(precision)))
    field = spec.packet_template_at(0).fields[0]
    assert field.format(field.raw_value(b"\xff" * 8)) == text


def test_values_of_more_than_28_digits_format() -> None:
    """Finding: ``format()`` raised ``InvalidOperation`` beyond the default context's 28 digits.

    A file needs millions of parts for such a value (factors are 64-bit), so the field is built
    directly here.
    """
    field = _one_field_spec(precision=0, factor=10**40)
    assert field.format(field.raw_value(b"\x02")) == f"{2 * 10**40} °C"
    field = _one_field_spec(precision=2, factor=2**100)
    assert field.format(field.raw_value(b"\x01")) == "12676506002282294278849822720.00 °C"


def _one_field_spec(precision: int, factor: int) -> FieldSpec:
    unit = Unit(62, UnitFamily.TEMPERATURE, "DegreesCelsius", " °C")
    part = Part(0, 0, 0xFF, signed=False, factor=factor)
    return FieldSpec("x", ("x", "x", "x"), unit, precision, FieldType.NUMBER, (part,))


def test_datetime_beyond_year_9999_formats_as_a_number() -> None:
    """Finding: a DateTime field with a huge value made ``format()`` raise ``OverflowError``."""
    spec = Specification(parse_vsf(_one_field(0, type_id=5)))
    field = spec.packet_template_at(0).fields[0]
    assert field.format(field.raw_value(b"\xff" * 8)) == "18446744073709551615"
    assert field.format(field.raw_value(b"\x00" * 8)) == "01/01/2001 00:00:00"


def test_field_without_parts_is_absent_on_both_decoding_paths() -> None:
    """Finding: the generated decoder gave 0 for a field without parts.

    The generic path (and the reference) give ``None``: the field is absent.
    """
    data = make_vsf(packets=[(0x0010, 0xFFFF, 0x7E11, 0xFFFF, 0x0100, [(8, 1, 62, 0, 1, [])])])
    spec = Specification(parse_vsf(data))
    decoder = spec.decoder(0x0010, 0x7E11, 0x0100)
    assert decoder is not None
    assert decoder.decode(bytes(8)) == (None,)
    assert decoder.fields[0].raw_value(bytes(8)) is None
