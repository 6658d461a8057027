"""The value-ID hash controllers use to look up the index of a named value."""

from __future__ import annotations


def value_id_hash(value_id: str) -> int:
    """Return the 31-bit djb-style hash (×33 + byte) of the ASCII ``value_id``.

    >>> f"{value_id_hash('Relais_Regler_R1_Handbetrieb'):08X}"
    '2D84EA19'
    """
    result = 0
    for byte in value_id.encode("ascii"):
        result = (result * 33 + byte) & 0xFFFFFFFF
    return result & 0x7FFFFFFF
