"""Property-based fuzzing of the stream receiver and the frame decoder (issue 8, §1).

Every test runs :func:`~.harness.receiver_target`, which compares the receiver with an
independent model of the framing rules and checks its bounds; see there for the invariants.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import example, given
from hypothesis import strategies as st

from aiovbus.protocol import (
    Datagram,
    Packet,
    Telegram,
    decode_frame,
)
from aiovbus.receiver import MAX_BUFFER, StreamReceiver

from . import oracle
from .conftest import fuzz
from .harness import CHANNEL, receiver_target
from .strategies import (
    cuts,
    datagrams,
    frames,
    mutate,
    mutations,
    real_frames,
    real_segments,
    streams,
)


@fuzz(300)
@given(st.binary(max_size=2000), cuts)
def test_random_bytes(data: bytes, cut_at: list[int]) -> None:
    receiver_target(data, cut_at)


@fuzz(300)
@given(streams, cuts)
def test_frames_junk_and_broken_frames_in_any_order(data: bytes, cut_at: list[int]) -> None:
    receiver_target(data, cut_at)


@fuzz(150)
@given(real_segments(), mutations, cuts)
def test_mutated_real_streams(data: bytes, operations, cut_at: list[int]) -> None:
    receiver_target(mutate(data, operations), cut_at)


@fuzz(200)
@given(frames, st.binary(max_size=1500), st.binary(max_size=300), cuts)
@example(
    Packet(0x0010, 0x7E11, 0x0100, bytes(508)),
    b"\xaa\x10\x00\x11\x7e\x10\x00\x01\x7f",  # a packet header announcing 127 frames
    b"",
    [],
)
def test_valid_frame_in_garbage_is_always_found(frame, before, after, cut_at) -> None:
    """Whatever precedes and follows it, and however the line is cut, a valid frame is found.

    Its SYNC ends any frame in progress and its bytes have bit 7 clear, so no garbage can
    swallow it; garbage that happens to hold valid frames of its own yields those as well.
    """
    stream = before + frame.encode() + after
    found = receiver_target(stream, cut_at)
    expected = replace(frame, channel=CHANNEL)
    assert (len(before), expected) in oracle.frames_in(stream, CHANNEL)
    assert expected in found


def test_every_kind_split_at_every_position() -> None:
    """A longest packet, a datagram and a full telegram, split once at every position."""
    line = (
        Packet(0x0010, 0x7E11, 0x0100, bytes(range(256)) + bytes(range(252))).encode()
        + Datagram(0x0000, 0x7E11, 0x0500, 0xFFFF, -1).encode()
        + Telegram(0x7771, 0x2011, 0x1F, bytes(range(0x80, 0x95))).encode()
    )
    expected = receiver_target(line)
    assert len(expected) == 3
    for split in range(len(line) + 1):
        assert receiver_target(line, [split], model=False) == expected


@fuzz(30)
@given(real_segments(max_frames=6), st.data())
def test_real_frames_split_at_every_position_in_two_and_three(data: bytes, draw) -> None:
    expected = receiver_target(data)
    assert len(expected) >= 1
    second = draw.draw(st.integers(min_value=0, max_value=len(data)))
    for split in range(len(data) + 1):
        assert receiver_target(data, [split, second], model=False) == expected


def test_byte_by_byte_equals_one_piece() -> None:
    corpus = real_frames()
    line = b"\x00\xff".join(frame.encode() for frame in corpus[:200])
    whole = StreamReceiver().feed(line)
    receiver = StreamReceiver()
    one_by_one = [frame for byte in line for frame in receiver.feed(bytes((byte,)))]
    assert one_by_one == whole
    assert len(whole) == min(200, len(corpus))


def test_long_junk_keeps_the_buffer_bounded() -> None:
    receiver = StreamReceiver()
    for _ in range(100):
        assert receiver.feed(bytes(range(0x80)) * 40) == []
        assert receiver.buffered == MAX_BUFFER
    assert receiver.stats.junk_bytes == 100 * 0x80 * 40 - MAX_BUFFER


@fuzz(300)
@given(datagrams)
def test_datagram_round_trip(datagram: Datagram) -> None:
    wire = datagram.encode()
    assert len(wire) == 16
    assert decode_frame(wire) == datagram
    assert StreamReceiver().feed(wire) == [datagram]


@fuzz(300)
@given(
    st.integers(min_value=0, max_value=0x7F7F),
    st.integers(min_value=0, max_value=0x7F7F),
    st.integers(min_value=0, max_value=0x7F7F),
    st.binary(min_size=7, max_size=7).map(lambda data: bytes(byte & 0x7F for byte in data)),
)
def test_any_checksum_valid_datagram_decodes_like_the_model(
    destination: int, source: int, command: int, body: bytes
) -> None:
    """16 wire bytes with a valid checksum are a datagram, whatever the septet's reserved bit."""
    head = bytes((0xAA, destination & 0x7F, destination >> 8, source & 0x7F, source >> 8, 0x20))
    head += bytes((command & 0x7F, command >> 8)) + body
    wire = head + bytes(((0x7F - sum(head[1:])) & 0x7F,))
    datagram = decode_frame(wire)
    assert datagram == oracle.decode(wire)
    assert isinstance(datagram, Datagram)
    assert receiver_target(wire) == [replace(datagram, channel=CHANNEL)]
    high = [0x80 if body[6] >> bit & 1 else 0 for bit in range(6)]
    params = bytes(byte | bit for byte, bit in zip(body[:6], high, strict=True))
    assert datagram.param16 == int.from_bytes(params[:2], "little")
    assert datagram.param32 == int.from_bytes(params[2:], "little", signed=True)


@fuzz(100)
@given(st.lists(frames, min_size=1, max_size=300))
def test_memory_stays_bounded_for_many_distinct_headers(many) -> None:
    receiver = StreamReceiver()
    for frame in many:
        assert receiver.feed(frame.encode()) == [frame]
    assert len(receiver._last) <= 256
    assert receiver.buffered == 0
