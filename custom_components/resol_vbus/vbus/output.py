"""The ``decode --json`` line format, shared by the ``decode`` and ``monitor`` commands.

One JSON object per protocol 1.0 packet::

    {
        "channel": 1,
        "destination": 16,
        "source": 32273,
        "command": 256,
        "device": "DeltaSol MX [Controller]",
        "fields": [{"id": "000_2_0", "name": "Temperature sensor 1", "value": 1.9, "unit": "°C"}],
    }

``value`` is the decoded number (Time in minutes, Weektime in minutes since Monday 00:00,
DateTime in seconds since 2001-01-01 UTC); absent fields are left out. With ``text`` each field
also carries the reference's human text. Block-type packets (destination 0x0015, command
0x0100, no matching template) have no template fields; their sections are listed under
``"sections"``.

The constant parts of every line are built once per packet header and field, so formatting a
packet costs one ``repr`` per value.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .blocktype import decode_block_packet, is_block_packet
from .receiver import MAX_REMEMBERED
from .specification import compile_function

if TYPE_CHECKING:
    from collections.abc import Callable

    from .protocol import Packet
    from .specification import PacketDecoder, Specification

type _LineFn = Callable[[bytes, str], str]


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class PacketJsonFormatter:
    """Formats packets as ``decode --json`` lines."""

    def __init__(self, spec: Specification, language: str = "en", *, text: bool = False) -> None:
        """Create a formatter using ``spec`` for names in ``language``."""
        self._spec = spec
        self._language = language
        self._text = text
        self._heads: dict[tuple[int, int, int, int], str] = {}
        self._lines: dict[tuple[PacketDecoder, int], _LineFn] = {}
        self._last: dict[tuple[int, int, int, int], tuple[Packet, str]] = {}

    def _head(self, packet: Packet) -> str:
        key = (packet.channel, packet.destination, packet.source, packet.command)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= MAX_REMEMBERED:
                self._heads.clear()
            device = self._spec.source_name(packet, self._language)
            head = self._heads[key] = (
                f'{{"channel": {packet.channel}, "destination": {packet.destination}, '
                f'"source": {packet.source}, "command": {packet.command}, '
                f'"device": {_dumps(device)}, "fields": ['
            )
        return head

    def _compile(self, decoder: PacketDecoder, length: int) -> _LineFn:
        """Generate the function that turns a payload of ``length`` bytes into a line.

        Which fields are present depends only on the payload length, so the line after its head
        is one ``%``-format of a constant template with the decoded values (``%r``: their
        ``repr``, as ``json.dumps`` writes numbers).
        """
        assignments: list[str] = []
        template: list[str] = []  # the line after the head, a %-format of the values
        values: list[str] = []
        separator = ""
        for index, (field, expression) in enumerate(
            zip(decoder.fields, decoder.expressions(length), strict=True)
        ):
            if expression is None:
                continue
            assignments.append(f"    v{index} = {expression}\n")
            template.append(
                f'{separator}{{"id": {_dumps(field.field_id)}, '
                f'"name": {_dumps(field.name(self._language))}, "value": '.replace("%", "%%")
            )
            template.append("%r" + f', "unit": {_dumps(field.unit.symbol)}'.replace("%", "%%"))
            values.append(f"v{index}")
            if self._text:
                template.append(', "text": %s')
                values.append(f"J(F[{index}].format(v{index}))")
            template.append("}")
            separator = ", "
        template.append("]}")
        source = "def line(p, head):\n" + "".join(assignments)
        # One %-format in C instead of a repr() call per value (%r is repr).
        rest = "".join(template)
        if values:
            source += f"    return head + {rest!r} % ({', '.join(values)},)\n"
        else:  # no field present: no formatting (and "%%" stays as it is)
            source += f"    return head + {rest.replace('%%', '%')!r}\n"
        function: _LineFn = compile_function(source, "line", {"F": decoder.fields, "J": _dumps})
        return function

    def line(self, packet: Packet) -> str:
        """The JSON line (without newline) for ``packet``."""
        key = (packet.channel, packet.destination, packet.source, packet.command)
        last = self._last.get(key)
        if last is not None and last[0] == packet:
            return last[1]
        line = self._line(packet)
        if len(self._last) >= MAX_REMEMBERED:
            self._last.clear()
        self._last[key] = (packet, line)
        return line

    def _line(self, packet: Packet) -> str:
        head = self._head(packet)
        decoder = self._spec.decoder_for(packet)
        if decoder is None:
            if not is_block_packet(packet):
                return head + "]}"
            sections = decode_block_packet(packet) or ()
            listed = [
                {"id": s.surrogate_packet_id, "type": s.type, "values": list(s.values)}
                for s in sections
            ]
            return f'{head}], "sections": {_dumps(listed)}}}'
        key = (decoder, len(packet.frame_data))
        function = self._lines.get(key)
        if function is None:
            if len(self._lines) >= MAX_REMEMBERED:
                self._lines.clear()
            function = self._lines[key] = self._compile(decoder, key[1])
        return function(packet.frame_data, head)
