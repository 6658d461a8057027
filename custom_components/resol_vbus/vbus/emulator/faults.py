"""Fault knobs: what the emulator does wrong on purpose, at the connection and the controller."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    """Faults to inject; mutable while the emulator runs, all off by default.

    Connection level (counted per connection from the start of data mode):

    * ``drop_after_bytes``: close the connection once N data bytes went out. The frame that
      contains byte N is still sent whole, unless ``cut_mid_frame`` is set: then exactly N bytes.
    * ``cut_mid_frame``: closes happen inside a frame — the drop above is exact, and a reboot or
      stop first sends the first half of a frame to clients in data mode.
    * ``silent``: nothing at all is sent (greeting, replies, data); the connection stays open.
    * ``corrupt_every``: bit 0 of every Nth data byte is flipped.
    * ``hard_close``: closes reset the connection (RST) instead of closing it (FIN).
    * ``refuse_password``, ``reject_channel``, ``reject_data``: answer that command with ``-ERROR``.

    Controller level: ``answer_delay`` (seconds), ``drop_answers`` (the next N answers are lost;
    counts down), ``duplicate_answers`` (every answer twice), ``never_offer_bus``,
    ``update_after_lookups`` (each of the next N index look-ups is followed by a firmware update:
    changeset + 1, every index + 1; counts down).
    """

    drop_after_bytes: int | None = None
    cut_mid_frame: bool = False
    silent: bool = False
    corrupt_every: int | None = None
    refuse_password: bool = False
    answer_delay: float = 0.0
    drop_answers: int = 0
    duplicate_answers: bool = False
    never_offer_bus: bool = False
    reject_channel: bool = False
    reject_data: bool = False
    hard_close: bool = False
    update_after_lookups: int = 0
