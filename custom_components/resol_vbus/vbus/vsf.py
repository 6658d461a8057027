"""Parser for RESOL's binary VBus specification file (VSF, data version 1).

:func:`parse_vsf` checks the CRC and every table bound and returns the specification in the
library's compact, JSON-serialisable form (:data:`CompactSpec`), the same form the bundled
``spec.json.gz`` holds. :class:`~.specification.Specification` is built from that form.

The compact form is made of rows (lists, not objects), so that the JSON stays small and loads
quickly. Its keys:

* ``format`` (2) and ``datecode`` (YYYYMMDD);
* ``texts``: the string table of all localized names;
* ``units``: ``[unit_id, family_id, code, text]`` rows;
* ``devices``: ``[self, self_mask, peer, peer_mask, en, de, fr]`` rows, names as text indices;
* ``packets``: ``[dst, dst_mask, src, src_mask, command, fields]`` rows, where ``fields`` is the
  JSON text (not the list) of the packet's fields, each field
  ``[id, en, de, fr, unit_id, precision, type_id, parts]`` and each part
  ``[offset, bit_pos, mask, signed, factor]``. A specification decodes a packet's fields when
  that packet first appears: as nested lists, the fields of all templates would hold about
  3 MB that a system with a handful of packet kinds never uses.

Format 1 held the fields as lists.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final

from .errors import SpecificationError

DATA_VERSION: Final = 1
COMPACT_FORMAT: Final = 2

type CompactSpec = dict[str, Any]

_HEADER: Final = struct.Struct("<HHiii")
_SPEC: Final = struct.Struct("<i10i")
_TEXT: Final = struct.Struct("<i")
_LOCALIZED: Final = struct.Struct("<3i")
_UNIT: Final = struct.Struct("<4i")
_DEVICE: Final = struct.Struct("<4Hi")
_PACKET: Final = struct.Struct("<6Hii")
_FIELD: Final = struct.Struct("<7i")
_PART: Final = struct.Struct("<ibBbBq")
#: Table entries and texts read may take at most this many times the file's size: real files
#: never share tables, and shared ones could multiply a small file into billions of parts.
_ENTRY_BUDGET: Final = 4
#: Decimal places a field may have (RESOL's files use 0 to 6).
MAX_PRECISION: Final = 10


def crc16_x25(data: bytes | memoryview) -> int:
    """Return the CRC-16/X-25 of ``data`` (reflected polynomial 0x8408, init and xor 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


class _Reader:
    """Bounds-checked access to the tables of one VSF file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.budget = _ENTRY_BUDGET * len(data)

    def table(self, name: str, offset: int, count: int, block: struct.Struct) -> list[Any]:
        if count < 0 or offset < 0 or offset + count * block.size > len(self.data):
            msg = f"VSF {name} table (offset {offset}, {count} entries) lies outside the file"
            raise SpecificationError(msg)
        self._spend(count * block.size)
        return [block.unpack_from(self.data, offset + index * block.size) for index in range(count)]

    def _spend(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            msg = f"VSF tables and texts take more than {_ENTRY_BUDGET} times the file's size"
            raise SpecificationError(msg)

    def string(self, offset: int) -> str:
        end = self.data.find(b"\0", offset)
        if offset < 0 or end < 0:
            msg = f"VSF text at offset {offset} lies outside the file or is not terminated"
            raise SpecificationError(msg)
        self._spend(end - offset)
        try:
            return self.data[offset:end].decode("utf-8")
        except UnicodeDecodeError as err:
            msg = f"VSF text at offset {offset} is not UTF-8"
            raise SpecificationError(msg) from err


def _index(name: str, index: int, size: int) -> int:
    if not 0 <= index < size:
        msg = f"VSF {name} index {index} is out of range (0..{size - 1})"
        raise SpecificationError(msg)
    return index


def parse_vsf(data: bytes) -> CompactSpec:
    """Parse a VSF file and return its compact form; raise :class:`SpecificationError`."""
    if len(data) < _HEADER.size:
        msg = "VSF file is too short for its header"
        raise SpecificationError(msg)
    checksum_a, checksum_b, total_length, version, spec_offset = _HEADER.unpack_from(data)
    if total_length != len(data):
        msg = f"VSF length field says {total_length} bytes, the file has {len(data)}"
        raise SpecificationError(msg)
    crc = crc16_x25(memoryview(data)[4:])
    if not checksum_a == checksum_b == crc:
        msg = f"VSF checksum mismatch (file {checksum_a:04X}/{checksum_b:04X}, computed {crc:04X})"
        raise SpecificationError(msg)
    if version != DATA_VERSION:
        msg = f"unsupported VSF data version {version}"
        raise SpecificationError(msg)
    reader = _Reader(data)
    datecode, *tables = reader.table("specification", spec_offset, 1, _SPEC)[0]
    texts = [reader.string(offset) for (offset,) in reader.table("text", *_pair(tables, 0), _TEXT)]
    localized = [
        tuple(_index("text", i, len(texts)) for i in row)
        for row in reader.table("localized text", *_pair(tables, 1), _LOCALIZED)
    ]

    def names(index: int) -> list[int]:
        return list(localized[_index("localized text", index, len(localized))])

    units = [
        [
            unit_id,
            family,
            texts[_index("text", code, len(texts))],
            texts[_index("text", txt, len(texts))],
        ]
        for unit_id, family, code, txt in reader.table("unit", *_pair(tables, 2), _UNIT)
    ]
    unit_ids = {unit[0] for unit in units}
    devices = [
        [self_addr, self_mask, peer, peer_mask, *names(name)]
        for self_addr, self_mask, peer, peer_mask, name in reader.table(
            "device template", *_pair(tables, 3), _DEVICE
        )
    ]
    packets = []
    for dst, dst_mask, src, src_mask, command, _reserved, field_count, field_offset in reader.table(
        "packet template", *_pair(tables, 4), _PACKET
    ):
        fields = []
        for id_text, name, unit_id, precision, type_id, part_count, part_offset in reader.table(
            "packet template field", field_offset, field_count, _FIELD
        ):
            field_id = texts[_index("text", id_text, len(texts))]
            _check_field(field_id, unit_id, precision, unit_ids)
            parts = [
                [offset, bit_pos, mask, 1 if signed else 0, factor]
                for offset, bit_pos, mask, signed, _res, factor in reader.table(
                    "part", part_offset, part_count, _PART
                )
            ]
            if any(not 0 <= part[0] < 4 * 127 or not 0 <= part[1] < 8 for part in parts):
                msg = f"VSF field {field_id!r} has a part outside a packet's 508 bytes"
                raise SpecificationError(msg)
            fields.append([field_id, *names(name), unit_id, precision, type_id, parts])
        packets.append([dst, dst_mask, src, src_mask, command, fields])
    return _compact_texts(datecode, texts, units, devices, packets)


def _check_field(field_id: str, unit_id: int, precision: int, unit_ids: set[int]) -> None:
    if unit_id not in unit_ids:
        msg = f"VSF field {field_id!r} refers to unknown unit id {unit_id}"
        raise SpecificationError(msg)
    if precision > MAX_PRECISION:
        msg = f"VSF field {field_id!r} has precision {precision} (at most {MAX_PRECISION})"
        raise SpecificationError(msg)


def _pair(tables: list[int], index: int) -> tuple[int, int]:
    """Return (offset, count) of the ``index``-th (count, offset) pair."""
    return tables[2 * index + 1], tables[2 * index]


def _compact_texts(
    datecode: int,
    texts: list[str],
    units: list[list[Any]],
    devices: list[list[Any]],
    packets: list[list[Any]],
) -> CompactSpec:
    """Re-number the localized names into a string table holding only the strings in use."""
    table: dict[str, int] = {}

    def ref(index: int) -> int:
        return table.setdefault(texts[index], len(table))

    for device in devices:
        device[4:7] = [ref(i) for i in device[4:7]]
    for packet in packets:
        for field in packet[5]:
            field[1:4] = [ref(i) for i in field[1:4]]
        packet[5] = json.dumps(packet[5], separators=(",", ":"))
    return {
        "format": COMPACT_FORMAT,
        "datecode": datecode,
        "texts": list(table),
        "units": units,
        "devices": devices,
        "packets": packets,
    }
