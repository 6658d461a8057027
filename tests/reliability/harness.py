"""Fuzz targets: one function per parser that feeds it an input and checks every invariant.

Shared by the property tests (hypothesis) and by ``scripts/fuzz`` (atheris and the 10⁶-input
run). A target raises ``AssertionError`` for a violated invariant and lets any unexpected
exception escape: both are findings. The typed errors a parser documents
(:class:`~aiovbus.errors.SpecificationError` for VSF files) are
expected outcomes, not findings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from aiovbus import protocol
from aiovbus.errors import SpecificationError
from aiovbus.output import PacketJsonFormatter
from aiovbus.protocol import (
    MAX_PACKET_FRAMES,
    MAX_TELEGRAM_FRAMES,
    Packet,
    Telegram,
    decode_frame,
)
from aiovbus.receiver import MAX_BUFFER, MAX_REMEMBERED, StreamReceiver
from aiovbus.recording import (
    Comment,
    HeaderSetStart,
    RawData,
    RecordedFrame,
    read_recording,
    write_recording,
)
from aiovbus.specification import CACHE_LIMIT, Specification
from aiovbus.vsf import parse_vsf

from . import oracle

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiovbus.protocol import Frame

CHANNEL = 3
#: The protocol module's septet-layout cache: one entry per (frame count, group size).
LAYOUT_LIMIT = MAX_PACKET_FRAMES + MAX_TELEGRAM_FRAMES
MAX_RECORD = 0xFFFF


def on_wire(frame: Frame) -> Frame:
    """``frame`` as the wire carries it: addresses and commands lose bits 7 and 15.

    The frame classes accept any 16-bit address and command, as the reference does, but the
    wire has 7 bits per byte; ``encode()`` drops the others (recordings can hold such values).
    """
    if isinstance(frame, Telegram):
        return replace(frame, destination=frame.destination & 0x7F7F, source=frame.source & 0x7F7F)
    return replace(
        frame,
        destination=frame.destination & 0x7F7F,
        source=frame.source & 0x7F7F,
        command=frame.command & 0x7F7F,
    )


def check_protocol_caches() -> None:
    """The frame decoder's module-level caches stay within their limits."""
    assert len(protocol._HIGH_BITS) <= protocol._HIGH_BITS_LIMIT
    assert len(protocol._GROUP_LAYOUTS) <= LAYOUT_LIMIT


def feed(data: bytes, cuts: Sequence[int]) -> tuple[list[Frame], StreamReceiver]:
    """Feed ``data`` cut at ``cuts`` into a new receiver, checking its bounds after each call."""
    receiver = StreamReceiver(CHANNEL)
    frames: list[Frame] = []
    previous = 0
    for cut in (*sorted(cuts), len(data)):
        frames += receiver.feed(data[previous:cut])
        previous = max(previous, cut)
        assert receiver.buffered <= MAX_BUFFER
        assert len(receiver._last) <= MAX_REMEMBERED
    return frames, receiver


def receiver_target(data: bytes, cuts: Sequence[int] = (), *, model: bool = True) -> list[Frame]:
    """The stream receiver on ``data`` in one piece and cut at ``cuts``; returns the frames.

    Invariants: never raises; at most 1024 bytes buffered and 256 frames remembered after every
    call; the same frames and counters however the stream is cut; every byte is counted exactly
    once (junk, emitted frame or buffered); every emitted frame re-encodes to a frame that
    decodes to itself, and to the received bytes unless they carried reserved septet bits.
    With ``model``, the frames are exactly those the specification model finds (every valid
    frame embedded in garbage is found, and nothing else).
    """
    whole, receiver = feed(data, ())
    chunked, cut_receiver = feed(data, [cut % (len(data) + 1) for cut in cuts])
    assert chunked == whole
    assert cut_receiver.stats == receiver.stats
    assert cut_receiver.buffered == receiver.buffered
    stats = receiver.stats
    assert stats.bytes == len(data)
    assert stats.frames == len(whole)
    emitted = 0
    for frame in whole:
        wire = frame.encode()
        emitted += len(wire)
        assert decode_frame(wire, CHANNEL) == frame
    assert stats.bytes == stats.junk_bytes + emitted + receiver.buffered
    if model:
        found = oracle.frames_in(data, CHANNEL)
        assert [frame for _offset, frame in found] == whole
        for offset, frame in found:
            wire = frame.encode()
            received = data[offset : offset + len(wire)]
            assert wire == received or not oracle.canonical(received)
    check_protocol_caches()
    return whole


# -- recordings ---------------------------------------------------------------------------------


def recording_target(data: bytes) -> int:
    """The recording reader on ``data``; returns the number of items read.

    Invariants: never raises; every item is well-formed; writing the items and reading them
    back gives the same items (unless a comment's text grew beyond a record's 64 KiB when its
    invalid UTF-8 was replaced, which the writer refuses with ``ValueError``).
    """
    items = list(read_recording(data))
    for item in items:
        if isinstance(item, RecordedFrame):
            assert decode_frame(item.frame.encode(), item.frame.channel) == on_wire(item.frame)
            assert 0 <= item.frame.channel <= 0xFF
        elif isinstance(item, RawData):
            assert 0 <= item.channel <= 0xFF
        else:
            assert isinstance(item, HeaderSetStart | Comment)
    try:
        rewritten = write_recording(items)
    except ValueError:
        assert any(
            isinstance(item, Comment) and len(item.text.encode()) > MAX_RECORD - 14
            for item in items
        )
        return len(items)
    assert list(read_recording(rewritten)) == items
    return len(items)


# -- specification files ------------------------------------------------------------------------


def vsf_target(data: bytes, payloads: Sequence[bytes] = (bytes(range(256)) * 2,)) -> int:
    """The VSF parser and the specification built from it; returns the number of templates.

    Invariants: loading either succeeds or raises ``SpecificationError`` (so does a template
    when it is first used); every packet template that loads decodes every payload (of any
    length) with its generated code exactly as the generic path does, formats every value and
    prints it as a JSON line, raising nothing at all; the specification's caches stay bounded.
    """
    try:
        spec = Specification(parse_vsf(data))
    except SpecificationError:
        return 0
    formatter = PacketJsonFormatter(spec, "en", text=True)
    for index in range(spec.packet_template_count):
        try:
            # Templates are checked when first used (an unknown field type, for instance).
            template = spec.packet_template_at(index)
        except SpecificationError:
            continue
        try:
            decoder = spec.decoder(template.destination, template.source, template.command)
        except SpecificationError:
            continue
        if decoder is None or decoder.template is not template:
            continue  # an earlier template with the same header (or a broken one) wins
        for payload in payloads:
            for length in sorted({0, 4, len(payload) // 8 * 4, 4 * min(127, len(payload) // 4)}):
                frame_data = payload[:length]
                values = decoder.decode(frame_data)
                assert len(values) == len(decoder.fields)
                for field, value in zip(decoder.fields, values, strict=True):
                    assert value == field.raw_value(frame_data)
                    if value is not None:
                        assert isinstance(field.format(value), str)
                packet = Packet(template.destination, template.source, template.command, frame_data)
                assert formatter.line(packet).startswith("{")
        spec.device_name(template.source, template.destination)
    assert len(spec._decoders) <= CACHE_LIMIT
    assert len(spec._device_names) <= CACHE_LIMIT
    return spec.packet_template_count
