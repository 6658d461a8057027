"""Tests for the VSF parser, the compact specification data and scripts/generate_spec.

Protocol reference §10 (VSF layout, the two reference files) and §13 (units). Parser error paths
use small VSF files built in memory by :func:`build_vsf` / :func:`seal`.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aiovbus import vsf
from aiovbus.errors import SpecificationError, VBusError
from aiovbus.specification import (
    FieldType,
    Specification,
    UnitFamily,
    dump_compact_json,
    load_compact_json,
)
from aiovbus.vsf import COMPACT_FORMAT, DATA_VERSION, crc16_x25, parse_vsf

from .conftest import reference_file

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[2]
GENERATE_SPEC = ROOT / "scripts" / "generate_spec"
BUNDLED = Path(vsf.__file__).parent / "data" / "spec.json.gz"

# -- an in-memory VSF builder ---------------------------------------------------------------

type PartRow = tuple[int, int, int, int, int]  # offset, bit pos, mask, signed, factor
type FieldRow = tuple[int, int, int, int, int, Sequence[PartRow]]  # id, name, unit, prec, type
type PacketRow = tuple[int, int, int, int, int, Sequence[FieldRow]]  # dst, mask, src, mask, cmd

DATECODE = 20240101
TEXTS: tuple[str | bytes, ...] = (
    "DFA",  # 0
    "Temperature sensor 1",  # 1
    "Temperatur Sensor 1",  # 2
    "Température sonde 1",  # 3
    "DegreesCelsius",  # 4
    " °C",  # 5
    "None",  # 6
    "",  # 7
    "000_2_0",  # 8
    "unused text",  # 9
)
LOCALIZED = ((0, 0, 0), (1, 2, 3))
UNITS = ((62, 0, 4, 5), (-1, -1, 6, 7))
DEVICES = ((0x0010, 0xFFFF, 0x0000, 0x0000, 0),)
PARTS: tuple[PartRow, ...] = ((0, 0, 0xFF, 0, 1), (1, 0, 0xFF, 1, 256))
FIELD: FieldRow = (8, 1, 62, 1, 1, PARTS)
PACKETS: tuple[PacketRow, ...] = ((0x0010, 0xFFFF, 0x7E11, 0xFFFF, 0x0100, (FIELD,)),)

EXPECTED_COMPACT = {
    "format": 2,
    "datecode": DATECODE,
    "texts": ["DFA", "Temperature sensor 1", "Temperatur Sensor 1", "Température sonde 1"],
    "units": [[62, 0, "DegreesCelsius", " °C"], [-1, -1, "None", ""]],
    "devices": [[0x0010, 0xFFFF, 0x0000, 0x0000, 0, 0, 0]],
    "packets": [
        [
            0x0010,
            0xFFFF,
            0x7E11,
            0xFFFF,
            0x0100,
            '[["000_2_0",1,2,3,62,1,1,[[0,0,255,0,1],[1,0,255,1,256]]]]',
        ]
    ],
}


def fields_of(packet: list[Any]) -> list[Any]:
    """A packet row's fields, which the compact form holds as JSON text."""
    text = packet[5]
    assert isinstance(text, str)
    return json.loads(text)


HEADER = struct.Struct("<HHiii")
SPEC_BLOCK = struct.Struct("<11i")
TABLES = ("text", "localized text", "unit", "device template", "packet template")


def build_vsf(
    *,
    datecode: int = DATECODE,
    version: int = DATA_VERSION,
    texts: Sequence[str | bytes] = TEXTS,
    localized: Sequence[tuple[int, int, int]] = LOCALIZED,
    units: Sequence[tuple[int, int, int, int]] = UNITS,
    devices: Sequence[tuple[int, int, int, int, int]] = DEVICES,
    packets: Sequence[PacketRow] = PACKETS,
    trailer: bytes = b"",
) -> tuple[bytearray, dict[str, int]]:
    """Lay out a VSF (header, spec block, tables, strings, trailer); :func:`seal` finishes it.

    Returns the unsealed bytes and the offsets of the blocks (``spec``, the table names of
    :data:`TABLES`, ``fields`` and ``parts`` (first field / part table), ``trailer``).
    """
    layout: dict[str, int] = {"spec": HEADER.size}
    position = HEADER.size + SPEC_BLOCK.size

    def reserve(name: str, size: int) -> int:
        nonlocal position
        layout.setdefault(name, position)
        start = position
        position += size
        return start

    sizes = (4 * len(texts), 12 * len(localized), 16 * len(units), 12 * len(devices))
    for name, size in zip(TABLES, (*sizes, 20 * len(packets)), strict=True):
        reserve(name, size)
    field_tables = [reserve("fields", 28 * len(packet[5])) for packet in packets]
    part_tables = [
        [reserve("parts", 16 * len(field[5])) for field in packet[5]] for packet in packets
    ]
    strings = [text.encode() if isinstance(text, str) else text for text in texts]
    string_offsets = [reserve("strings", len(string) + 1) for string in strings]
    layout["trailer"] = position
    buf = bytearray(position + len(trailer))
    buf[position:] = trailer

    HEADER.pack_into(buf, 0, 0, 0, 0, version, layout["spec"])
    counts = (len(texts), len(localized), len(units), len(devices), len(packets))
    pairs = [
        value for name, count in zip(TABLES, counts, strict=True) for value in (count, layout[name])
    ]
    SPEC_BLOCK.pack_into(buf, layout["spec"], datecode, *pairs)
    for offset, string in zip(string_offsets, strings, strict=True):
        buf[offset : offset + len(string)] = string
    _pack_rows(buf, "<i", layout["text"], [(offset,) for offset in string_offsets])
    _pack_rows(buf, "<3i", layout["localized text"], localized)
    _pack_rows(buf, "<4i", layout["unit"], units)
    _pack_rows(buf, "<4Hi", layout["device template"], devices)
    packet_rows = [
        (*header, 0, len(fields), table)
        for (*header, fields), table in zip(packets, field_tables, strict=True)
    ]
    _pack_rows(buf, "<6Hii", layout["packet template"], packet_rows)
    for (*_header, fields), field_table, tables in zip(
        packets, field_tables, part_tables, strict=True
    ):
        field_rows = [
            (*field, len(parts), table)
            for (*field, parts), table in zip(fields, tables, strict=True)
        ]
        _pack_rows(buf, "<7i", field_table, field_rows)
        for (*_field, parts), part_table in zip(fields, tables, strict=True):
            part_rows = [
                (offset, bit, mask, signed, 0, factor)
                for offset, bit, mask, signed, factor in parts
            ]
            _pack_rows(buf, "<ibBbBq", part_table, part_rows)
    return buf, layout


def _pack_rows(buf: bytearray, fmt: str, offset: int, rows: Sequence[Sequence[int]]) -> None:
    block = struct.Struct(fmt)
    for index, row in enumerate(rows):
        block.pack_into(buf, offset + index * block.size, *row)


def seal(buf: bytearray) -> bytes:
    """Set the total length and both checksums (CRC-16/X-25 over bytes 4…end)."""
    struct.pack_into("<i", buf, 4, len(buf))
    crc = crc16_x25(bytes(buf[4:]))
    struct.pack_into("<HH", buf, 0, crc, crc)
    return bytes(buf)


def make_vsf(**kwargs: Any) -> bytes:
    """Return a sealed VSF (see :func:`build_vsf` for the arguments)."""
    return seal(build_vsf(**kwargs)[0])


def patched(buf: bytearray, offset: int, fmt: str, *values: int) -> bytes:
    """Seal ``buf`` after packing ``values`` at ``offset``."""
    struct.pack_into(fmt, buf, offset, *values)
    return seal(buf)


def _raises(data: bytes, message: str) -> None:
    with pytest.raises(SpecificationError) as info:
        parse_vsf(data)
    assert str(info.value) == message


# -- CRC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"", 0x0000),  # init 0xFFFF, final XOR 0xFFFF
        (b"123456789", 0x906E),  # the catalogue check value of CRC-16/X-25
    ],
)
def test_crc16_x25(data: bytes, crc: int) -> None:
    assert crc16_x25(data) == crc
    assert crc16_x25(memoryview(data)) == crc


@pytest.mark.parametrize("data", [b"", b"123456789", b"\x00", bytes(range(256))])
def test_crc16_x25_residue(data: bytes) -> None:
    # the catalogue residue 0xF0B8 (before the final XOR) after appending the CRC little-endian
    crc = crc16_x25(data)
    assert crc16_x25(data + crc.to_bytes(2, "little")) == 0xF0B8 ^ 0xFFFF


def test_constants() -> None:
    assert (DATA_VERSION, COMPACT_FORMAT) == (1, 2)


# -- the in-memory VSF ----------------------------------------------------------------------


def test_minimal_vsf_parses_to_compact_form() -> None:
    assert parse_vsf(make_vsf()) == EXPECTED_COMPACT


def test_header_checksums_of_built_file() -> None:
    data = make_vsf()
    checksum_a, checksum_b, length, version, spec_offset = HEADER.unpack_from(data)
    assert checksum_a == checksum_b == crc16_x25(data[4:])
    assert (length, version, spec_offset) == (len(data), 1, 16)


def test_empty_vsf() -> None:
    data = make_vsf(texts=(), localized=(), units=(), devices=(), packets=())
    assert len(data) == 60
    compact = parse_vsf(data)
    assert compact == {
        "format": 2,
        "datecode": DATECODE,
        "texts": [],
        "units": [],
        "devices": [],
        "packets": [],
    }
    spec = Specification(compact)
    assert spec.packet_template_count == 0
    assert spec.device_name(0x7E11) == "Unknown Device (0x7E11)"


def test_string_table_keeps_only_names_in_use_once() -> None:
    texts = (*TEXTS, "Sensor", "Fühler")
    localized = ((0, 0, 0), (1, 2, 3), (10, 11, 10))
    fields = (FIELD, (9, 2, -1, 0, 1, ()), (8, 1, 62, 0, 1, ()))
    compact = parse_vsf(
        make_vsf(
            texts=texts,
            localized=localized,
            packets=((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, fields),),
        )
    )
    assert compact["texts"] == [
        "DFA",
        "Temperature sensor 1",
        "Temperatur Sensor 1",
        "Température sonde 1",
        "Sensor",
        "Fühler",
    ]
    assert [field[:4] for field in fields_of(compact["packets"][0])] == [
        ["000_2_0", 1, 2, 3],
        ["unused text", 4, 5, 4],
        ["000_2_0", 1, 2, 3],
    ]


def test_part_flags_and_boundaries() -> None:
    parts = ((507, 7, 0x80, 5, -(2**62)), (0, 0, 0x01, 0, 2**62))
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((8, 1, -1, -2, 3, parts),)),)
    compact = parse_vsf(make_vsf(packets=packets))
    assert fields_of(compact["packets"][0])[0] == [
        "000_2_0",
        1,
        2,
        3,
        -1,
        -2,
        3,
        [[507, 7, 0x80, 1, -(2**62)], [0, 0, 0x01, 0, 2**62]],
    ]


def test_several_packets_and_fields() -> None:
    second = (8, 1, -1, 0, 5, ((4, 0, 0xFF, 0, 1),) * 3)
    packets = (
        (0x0010, 0xFFFF, 0x7E11, 0xFFFF, 0x0100, (FIELD, second)),
        (0x0015, 0xFFFF, 0x7E30, 0xFFF0, 0x0200, ()),
        (0x6651, 0xFFFF, 0x7E11, 0xFFFF, 0x0200, (second,)),
    )
    compact = parse_vsf(make_vsf(packets=packets))
    assert [packet[:5] for packet in compact["packets"]] == [
        [0x0010, 0xFFFF, 0x7E11, 0xFFFF, 0x0100],
        [0x0015, 0xFFFF, 0x7E30, 0xFFF0, 0x0200],
        [0x6651, 0xFFFF, 0x7E11, 0xFFFF, 0x0200],
    ]
    assert [len(fields_of(packet)) for packet in compact["packets"]] == [2, 0, 1]
    assert fields_of(compact["packets"][2])[0][7] == [[4, 0, 255, 0, 1]] * 3


def test_specification_from_built_vsf() -> None:
    spec = Specification.from_vsf(make_vsf())
    assert spec.datecode == DATECODE
    assert spec.device_name(0x0010) == "DFA"
    decoder = spec.decoder(0x0010, 0x7E11, 0x0100)
    assert decoder is not None
    (field,) = decoder.fields
    assert (field.field_id, field.name("de"), field.unit.code, field.unit.family) == (
        "000_2_0",
        "Temperatur Sensor 1",
        "DegreesCelsius",
        UnitFamily.TEMPERATURE,
    )
    assert decoder.decode(bytes.fromhex("13000000")) == (1.9000000000000001,)
    assert decoder.decode(bytes.fromhex("38ff0000")) == (-20.0,)


def test_specification_from_vsf_path(tmp_path: Path) -> None:
    path = tmp_path / "mini.vsf"
    path.write_bytes(make_vsf())
    for source in (path, str(path)):
        spec = Specification.from_vsf(source)
        assert spec.datecode == DATECODE
        assert spec.packet_template_count == 1


def test_specification_from_vsf_rejects_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.vsf"
    path.write_bytes(make_vsf(version=2))
    with pytest.raises(SpecificationError, match=r"^unsupported VSF data version 2$"):
        Specification.from_vsf(path)


# -- parser error paths ---------------------------------------------------------------------


def test_error_is_a_vbus_error() -> None:
    with pytest.raises(VBusError):
        parse_vsf(b"")


@pytest.mark.parametrize("size", [0, 1, 15])
def test_too_short(size: int) -> None:
    _raises(bytes(size), "VSF file is too short for its header")


def test_length_mismatch() -> None:
    data = make_vsf()
    _raises(data + b"\0", f"VSF length field says {len(data)} bytes, the file has {len(data) + 1}")
    _raises(data[:-1], f"VSF length field says {len(data)} bytes, the file has {len(data) - 1}")
    _raises(bytes(16), "VSF length field says 0 bytes, the file has 16")


def test_checksum_mismatch() -> None:
    data = bytearray(make_vsf())
    crc = crc16_x25(data[4:])
    data[20] ^= 0x01  # a datecode bit
    bad = crc16_x25(data[4:])
    assert bad != crc
    _raises(bytes(data), f"VSF checksum mismatch (file {crc:04X}/{crc:04X}, computed {bad:04X})")


@pytest.mark.parametrize(("delta_a", "delta_b"), [(1, 0), (0, 1), (1, 1)])
def test_checksum_fields_must_both_match(delta_a: int, delta_b: int) -> None:
    data = bytearray(make_vsf())
    crc = crc16_x25(data[4:])
    struct.pack_into("<HH", data, 0, crc ^ delta_a, crc ^ delta_b)
    _raises(
        bytes(data),
        f"VSF checksum mismatch (file {crc ^ delta_a:04X}/{crc ^ delta_b:04X}, computed {crc:04X})",
    )


@pytest.mark.parametrize("version", [0, 2, -1])
def test_wrong_data_version(version: int) -> None:
    _raises(make_vsf(version=version), f"unsupported VSF data version {version}")


@pytest.mark.parametrize("spec_offset", [-1, 17, 10_000])
def test_specification_block_outside_file(spec_offset: int) -> None:
    buf, _ = build_vsf(texts=(), localized=(), units=(), devices=(), packets=())
    # 60 bytes: a spec block at 17 would end at 61
    data = patched(buf, 12, "<i", spec_offset)
    _raises(
        data, f"VSF specification table (offset {spec_offset}, 1 entries) lies outside the file"
    )


@pytest.mark.parametrize("table", range(5))
@pytest.mark.parametrize("count", [-1, 1000])
def test_table_count_outside_file(table: int, count: int) -> None:
    buf, layout = build_vsf()
    data = patched(buf, layout["spec"] + 4 + 8 * table, "<i", count)
    name = TABLES[table]
    _raises(
        data, f"VSF {name} table (offset {layout[name]}, {count} entries) lies outside the file"
    )


@pytest.mark.parametrize("table", range(5))
def test_table_offset_outside_file(table: int) -> None:
    buf, layout = build_vsf()
    count = SPEC_BLOCK.unpack_from(buf, layout["spec"])[1 + 2 * table]
    for offset in (-4, len(buf)):
        data = patched(bytearray(buf), layout["spec"] + 8 + 8 * table, "<i", offset)
        _raises(
            data,
            f"VSF {TABLES[table]} table (offset {offset}, {count} entries) lies outside the file",
        )


@pytest.mark.parametrize(("shift", "ok"), [(0, True), (1, False)])
def test_table_may_end_exactly_at_file_end(shift: int, ok: bool) -> None:  # noqa: FBT001
    # a copy of the part table as the file's last 16 bytes, the field pointing at it
    trailer = struct.pack("<ibBbBq", 3, 0, 0xFF, 0, 0, 1)
    buf, layout = build_vsf(trailer=trailer)
    offset = layout["trailer"] + shift
    data = patched(buf, layout["fields"] + 20, "<ii", 1, offset)
    assert offset + 16 - shift == len(data)
    if ok:
        assert fields_of(parse_vsf(data)["packets"][0])[0][7] == [[3, 0, 255, 0, 1]]
    else:
        _raises(data, f"VSF part table (offset {offset}, 1 entries) lies outside the file")


@pytest.mark.parametrize(("offset", "count"), [(-28, 1), (10_000, 1), (None, 1000), (None, -1)])
def test_field_table_outside_file(offset: int | None, count: int) -> None:
    buf, layout = build_vsf()
    field_offset = layout["fields"] if offset is None else offset
    data = patched(buf, layout["packet template"] + 12, "<ii", count, field_offset)
    _raises(
        data,
        f"VSF packet template field table (offset {field_offset}, {count} entries)"
        " lies outside the file",
    )


@pytest.mark.parametrize(("offset", "count"), [(-16, 1), (10_000, 1), (None, 1000), (None, -2)])
def test_part_table_outside_file(offset: int | None, count: int) -> None:
    buf, layout = build_vsf()
    part_offset = layout["parts"] if offset is None else offset
    data = patched(buf, layout["fields"] + 20, "<ii", count, part_offset)
    _raises(data, f"VSF part table (offset {part_offset}, {count} entries) lies outside the file")


def test_unterminated_text() -> None:
    buf, layout = build_vsf(trailer=b"no NUL here")
    data = patched(buf, layout["text"] + 4 * 9, "<i", layout["trailer"])
    _raises(
        data, f"VSF text at offset {layout['trailer']} lies outside the file or is not terminated"
    )


@pytest.mark.parametrize("offset", [-1, -1000, 10_000])
def test_text_offset_outside_file(offset: int) -> None:
    buf, layout = build_vsf()
    data = patched(buf, layout["text"] + 4 * 9, "<i", offset)
    _raises(data, f"VSF text at offset {offset} lies outside the file or is not terminated")


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"caf\xe9", b"\xc3"])
def test_non_utf8_text(raw: bytes) -> None:
    buf, layout = build_vsf(texts=(*TEXTS[:9], raw))
    (offset,) = struct.unpack_from("<i", buf, layout["text"] + 4 * 9)
    _raises(seal(buf), f"VSF text at offset {offset} is not UTF-8")


def test_text_may_be_empty_and_is_read_up_to_its_nul() -> None:
    texts = ("DFA\0hidden", *TEXTS[1:])
    assert parse_vsf(make_vsf(texts=texts))["texts"][0] == "DFA"


@pytest.mark.parametrize("index", [10, -1, 2**31 - 1])
@pytest.mark.parametrize("column", range(3))
def test_localized_text_refers_to_missing_text(index: int, column: int) -> None:
    row = [1, 2, 3]
    row[column] = index
    localized = ((0, 0, 0), (row[0], row[1], row[2]))
    _raises(make_vsf(localized=localized), f"VSF text index {index} is out of range (0..9)")


@pytest.mark.parametrize("index", [10, -1])
@pytest.mark.parametrize("column", [2, 3])
def test_unit_refers_to_missing_text(index: int, column: int) -> None:
    row = [62, 0, 4, 5]
    row[column] = index
    units = ((row[0], row[1], row[2], row[3]), (-1, -1, 6, 7))
    _raises(make_vsf(units=units), f"VSF text index {index} is out of range (0..9)")


@pytest.mark.parametrize("index", [2, -1])
def test_device_refers_to_missing_localized_text(index: int) -> None:
    devices = ((0x0010, 0xFFFF, 0, 0, index),)
    _raises(make_vsf(devices=devices), f"VSF localized text index {index} is out of range (0..1)")


@pytest.mark.parametrize("index", [2, -1])
def test_field_name_refers_to_missing_localized_text(index: int) -> None:
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((8, index, 62, 1, 1, PARTS),)),)
    _raises(make_vsf(packets=packets), f"VSF localized text index {index} is out of range (0..1)")


@pytest.mark.parametrize("index", [10, -1])
def test_field_id_refers_to_missing_text(index: int) -> None:
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((index, 1, 62, 1, 1, PARTS),)),)
    _raises(make_vsf(packets=packets), f"VSF text index {index} is out of range (0..9)")


@pytest.mark.parametrize("unit_id", [47, 0, -2])
def test_unknown_unit_id(unit_id: int) -> None:
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((8, 1, unit_id, 1, 1, PARTS),)),)
    _raises(make_vsf(packets=packets), f"VSF field '000_2_0' refers to unknown unit id {unit_id}")


@pytest.mark.parametrize(
    "part",
    [(508, 0, 0xFF, 0, 1), (-1, 0, 0xFF, 0, 1), (0, 8, 0xFF, 0, 1), (0, -1, 0xFF, 0, 1)],
)
def test_part_outside_packet(part: PartRow) -> None:
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((8, 1, 62, 1, 1, (PARTS[0], part)),)),)
    _raises(
        make_vsf(packets=packets), "VSF field '000_2_0' has a part outside a packet's 508 bytes"
    )


def test_part_outside_packet_with_missing_id_text() -> None:
    # regression: the id text index is checked before the message uses it (was an IndexError)
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((10, 1, 62, 1, 1, ((508, 0, 255, 0, 1),)),)),)
    _raises(make_vsf(packets=packets), "VSF text index 10 is out of range (0..9)")


def test_unknown_unit_with_missing_id_text() -> None:
    packets = ((0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, ((10, 1, 47, 1, 1, PARTS),)),)
    _raises(make_vsf(packets=packets), "VSF text index 10 is out of range (0..9)")


# -- compact data and Specification(...) ----------------------------------------------------


def test_dump_and_load_compact_json_round_trip() -> None:
    compact = parse_vsf(make_vsf())
    data = dump_compact_json(compact)
    assert data[:2] == b"\x1f\x8b"
    assert data[4:8] == bytes(4)  # gzip mtime 0: reproducible output
    assert dump_compact_json(compact) == data
    assert load_compact_json(data) == EXPECTED_COMPACT


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not gzip",
        gzip.compress(b"{", mtime=0),  # not JSON
        gzip.compress(b"\xff\xfe", mtime=0),  # not UTF-8
        gzip.compress(b'{"format": 1}', mtime=0)[:-5],  # truncated
    ],
)
def test_load_compact_json_rejects_non_gzip_json(data: bytes) -> None:
    with pytest.raises(
        SpecificationError, match=r"^specification data is not gzip-compressed JSON"
    ):
        load_compact_json(data)


def _compact(**changes: Any) -> dict[str, Any]:
    compact = parse_vsf(make_vsf())
    compact.update(changes)
    return compact


@pytest.mark.parametrize(
    ("compact", "message"),
    [
        ({}, "unsupported specification data format None"),
        ({"format": 1}, "unsupported specification data format 1"),
        ({"format": "2"}, "unsupported specification data format '2'"),
    ],
)
def test_specification_rejects_wrong_format(compact: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecificationError) as info:
        Specification(compact)
    assert str(info.value) == message
    assert info.value.__cause__ is None


def _without(key: str) -> dict[str, Any]:
    return {name: value for name, value in EXPECTED_COMPACT.items() if name != key}


@pytest.mark.parametrize(
    ("compact", "cause"),
    [
        ({"format": 2}, KeyError("datecode")),
        (_without("texts"), KeyError("texts")),
        (_without("units"), KeyError("units")),
        (_without("devices"), KeyError("devices")),
        (_without("packets"), KeyError("packets")),
        (_compact(datecode="soon"), ValueError()),
        (_compact(units=[[62, 9, "DegreesCelsius", " °C"]]), ValueError()),  # no family 9
        (_compact(units=[[62, 0, "DegreesCelsius"]]), ValueError()),
        (_compact(devices=[[0x10, 0xFFFF, 0, 0, 0, 0, 99]]), IndexError()),
        (_compact(packets=[None]), TypeError()),
        # format 1's fields, as lists, under format 2
        (_compact(packets=[[0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, []]]), TypeError()),
    ],
)
def test_specification_rejects_bad_compact_data(compact: dict[str, Any], cause: Exception) -> None:
    with pytest.raises(SpecificationError, match=r"^invalid specification data: ") as info:
        Specification(compact)
    assert type(info.value.__cause__) is type(cause)
    if isinstance(cause, KeyError):
        assert str(info.value) == f"invalid specification data: {cause}"


@pytest.mark.parametrize(
    ("field", "cause"),
    [
        (["000_2_0", 1, 2, 3, 62, 1, 9, []], ValueError),  # no field type 9
        (["000_2_0", 1, 2, 3, 47, 1, 1, []], KeyError),  # unknown unit id
        (["000_2_0", 1, 2, 99, 62, 1, 1, []], IndexError),  # missing text
        (["000_2_0", 1, 2, 3, 62, 1, 1, [[0, 0]]], ValueError),  # short part
        ('[["000_2_0",1,2,3,62,1,1,[]]', json.JSONDecodeError),  # truncated JSON text
        ("7", TypeError),  # not a list of fields
    ],
)
def test_specification_rejects_bad_template_on_first_use(
    field: list[Any] | str, cause: type[Exception]
) -> None:
    fields = field if isinstance(field, str) else json.dumps([field])
    spec = Specification(_compact(packets=[[0x10, 0xFFFF, 0x7E11, 0xFFFF, 0x100, fields]]))
    assert spec.packet_template_count == 1
    with pytest.raises(SpecificationError, match=r"^invalid packet template 0: ") as info:
        spec.packet_template_at(0)
    assert type(info.value.__cause__) is cause


# -- the bundled data (always in the repository) --------------------------------------------


def test_bundled_data_counts() -> None:
    compact = load_compact_json(BUNDLED.read_bytes())
    assert compact["format"] == COMPACT_FORMAT
    assert compact["datecode"] == 20240922
    assert len(compact["units"]) == 51
    assert len(compact["devices"]) == 1206
    assert len(compact["packets"]) == 360
    fields = [field for packet in compact["packets"] for field in fields_of(packet)]
    assert len(fields) == 6157
    assert Counter(field[6] for field in fields) == {
        FieldType.NUMBER: 6005,
        FieldType.DATETIME: 87,
        FieldType.TIME: 58,
        FieldType.WEEKTIME: 7,
    }
    assert Counter(packet[4] for packet in compact["packets"])[0x0100] == 293


def test_bundled_specification() -> None:
    spec = Specification.bundled()
    assert spec is Specification.bundled()
    assert spec.datecode == 20240922
    assert spec.packet_template_count == 360
    assert len(spec.units) == 51


# -- test.vsf (§10.2) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_vsf() -> bytes:
    return reference_file("test.vsf").read_bytes()


def test_test_vsf_header(test_vsf: bytes) -> None:
    assert len(test_vsf) == 7188
    assert HEADER.unpack_from(test_vsf)[:3] == (0x646C, 0x646C, 7188)
    assert crc16_x25(test_vsf[4:]) == 0x646C


def test_test_vsf_counts(test_vsf: bytes) -> None:
    compact = parse_vsf(test_vsf)
    assert compact["datecode"] == 20161007
    assert len(compact["units"]) == 48
    assert len(compact["devices"]) == 18
    assert len(compact["packets"]) == 2
    assert sum(len(fields_of(packet)) for packet in compact["packets"]) == 26


def test_test_vsf_content(test_vsf: bytes) -> None:
    compact = parse_vsf(test_vsf)
    texts = compact["texts"]
    devices = [(device[0], texts[device[4]]) for device in compact["devices"]]
    assert devices == [
        (0x0010, "DFA"),
        *[(0x7E30 + n, f"DeltaSol MX [WMZ #{n}]") for n in range(16)],
        (0x7F61, "IOC-Modul [Messwerte]"),
    ]
    assert [(packet[:5], len(fields_of(packet))) for packet in compact["packets"]] == [
        ([0x0010, 0xFFFF, 0x7E30, 0xFFF0, 0x0100], 8),
        ([0x0010, 0xFFFF, 0x7F61, 0xFFFF, 0x0100], 18),
    ]
    assert {field[6] for packet in compact["packets"] for field in fields_of(packet)} == {1}


def test_test_vsf_unit_differences(test_vsf: bytes) -> None:
    test_units = {row[2]: (row[0], row[1], row[3]) for row in parse_vsf(test_vsf)["units"]}
    bundled = {
        unit.code: (unit.unit_id, unit.family, unit.text)
        for unit in Specification.bundled().units.values()
    }
    assert sorted(bundled.keys() - test_units.keys()) == [
        "Amperes",
        "BecquerelPerCubicMeter",
        "PerHour",
        "PercentRelativeHumidity",
    ]
    assert sorted(test_units.keys() - bundled.keys()) == ["Microvolts"]
    assert test_units["Microvolts"] == (1100, -1, " µV")
    changed = sorted(
        code for code in test_units.keys() & bundled.keys() if test_units[code] != bundled[code]
    )
    assert changed == ["Days", "Hours", "Kilowatts", "Minutes", "Seconds", "Watts"]
    for code in changed:
        assert test_units[code][1] == UnitFamily.NONE
        assert bundled[code][1] in {UnitFamily.TIME, UnitFamily.POWER}
        assert test_units[code][::2] == bundled[code][::2]  # same id and text


def test_test_vsf_specification_from_path() -> None:
    path = reference_file("test.vsf")
    spec = Specification.from_vsf(path)
    assert spec.datecode == 20161007
    assert spec.units[47].family == UnitFamily.NONE  # Watts
    assert spec.device_name(0x7E3F) == "DeltaSol MX [WMZ #15]"
    decoder = spec.decoder(0x0010, 0x7E35, 0x0100)
    assert decoder is not None
    assert [field.field_id for field in decoder.fields][:2] == ["000_4_0", "008_4_0"]
    assert Specification.from_vsf(str(path)).datecode == 20161007


# -- vbus_specification.vsf: committed data equals a fresh generation -----------------------


@pytest.fixture(scope="module")
def reference_vsf() -> tuple[Path, bytes]:
    path = reference_file("vbus_specification.vsf")
    return path, path.read_bytes()


@pytest.fixture(scope="module")
def reference_compact(reference_vsf: tuple[Path, bytes]) -> dict[str, Any]:
    return parse_vsf(reference_vsf[1])


def test_reference_vsf_checksum(reference_vsf: tuple[Path, bytes]) -> None:
    data = reference_vsf[1]
    assert len(data) == 647548
    assert crc16_x25(data[4:]) == 0xBC25
    assert HEADER.unpack_from(data)[:4] == (0xBC25, 0xBC25, 647548, 1)


def test_reference_vsf_equals_bundled_data(reference_compact: dict[str, Any]) -> None:
    assert reference_compact == load_compact_json(BUNDLED.read_bytes())


def test_reference_vsf_generates_bundled_bytes(reference_compact: dict[str, Any]) -> None:
    assert dump_compact_json(reference_compact) == BUNDLED.read_bytes()


def test_reference_vsf_counts(reference_compact: dict[str, Any]) -> None:
    assert reference_compact["datecode"] == 20240922
    assert len(reference_compact["units"]) == 51
    assert len(reference_compact["devices"]) == 1206
    assert len(reference_compact["packets"]) == 360
    fields = [field for packet in reference_compact["packets"] for field in fields_of(packet)]
    assert len(fields) == 6157
    assert Counter(FieldType(field[6]).name for field in fields) == {
        "NUMBER": 6005,
        "DATETIME": 87,
        "TIME": 58,
        "WEEKTIME": 7,
    }


def _generate_spec(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, str(GENERATE_SPEC), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_generate_spec_writes_the_bundled_bytes(
    reference_vsf: tuple[Path, bytes], tmp_path: Path
) -> None:
    output = tmp_path / "x.json.gz"
    result = _generate_spec(reference_vsf[0], "--output", output)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"wrote {output} (datecode 20240922, 360 packet templates, 1206 devices)\n"
    )
    assert output.read_bytes() == BUNDLED.read_bytes()


def test_generate_spec_check_committed_data(reference_vsf: tuple[Path, bytes]) -> None:
    result = _generate_spec(reference_vsf[0], "--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "up to date\n", "")


def test_generate_spec_check_detects_differences(
    reference_vsf: tuple[Path, bytes], tmp_path: Path
) -> None:
    output = tmp_path / "x.json.gz"
    output.write_bytes(dump_compact_json(parse_vsf(make_vsf())))
    result = _generate_spec(reference_vsf[0], "--output", output, "--check")
    assert result.returncode == 1
    assert result.stdout == f"{output} differs from {reference_vsf[0]}\n"
    assert result.stderr == ""
    assert dump_compact_json(parse_vsf(make_vsf())) == output.read_bytes()  # left unchanged
    output.write_bytes(BUNDLED.read_bytes())
    result = _generate_spec(reference_vsf[0], "--output", output, "--check")
    assert (result.returncode, result.stdout) == (0, "up to date\n")
