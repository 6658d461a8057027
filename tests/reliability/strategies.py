"""Hypothesis strategies for VBus byte streams, and a corpus of real ones."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from aiovbus.protocol import Datagram, Packet, Telegram
from aiovbus.recording import RecordedFrame, read_recording
from tests.vbus_lib.conftest import RECORDINGS, REFERENCE_DATA

if TYPE_CHECKING:
    from aiovbus.protocol import Frame

U16 = st.integers(min_value=0, max_value=0xFFFF)
#: Addresses and commands travel as two 7-bit bytes: 16-bit values with bits 7 and 15 clear.
WIRE16 = st.integers(min_value=0, max_value=0x3FFF).map(
    lambda value: value & 0x7F | value >> 7 << 8
)
I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)

packets = st.builds(
    Packet,
    WIRE16,
    WIRE16,
    WIRE16,
    st.binary(max_size=508).map(lambda data: data[: len(data) // 4 * 4]),
)
datagrams = st.builds(Datagram, WIRE16, WIRE16, WIRE16, U16, I32)
telegrams = st.builds(
    Telegram,
    WIRE16,
    WIRE16,
    st.integers(min_value=0, max_value=0x1F),
    st.sampled_from((0, 7, 14, 21)).flatmap(lambda size: st.binary(min_size=size, max_size=size)),
)
frames = st.one_of(packets, datagrams, telegrams)


def _broken(wire: bytes, position: int, value: int) -> bytes:
    """``wire`` with one byte replaced (a bit error on the line)."""
    index = position % len(wire)
    return wire[:index] + bytes((value,)) + wire[index + 1 :]


#: Pieces a line carries: whole frames, cut frames, frames with a wrong byte, junk, SYNCs.
pieces = st.one_of(
    frames.map(lambda frame: frame.encode()),
    st.tuples(frames, st.integers(min_value=1)).map(
        lambda pair: pair[0].encode()[: pair[1] % len(pair[0].encode())]
    ),
    st.tuples(frames, st.integers(min_value=0), st.integers(min_value=0, max_value=255)).map(
        lambda triple: _broken(triple[0].encode(), triple[1], triple[2])
    ),
    st.binary(max_size=40),
    st.just(b"\xaa"),
    st.binary(max_size=20).map(lambda data: bytes(byte & 0x7F for byte in data)),
)
#: A line with all of the above in any order.
streams = st.lists(pieces, max_size=12).map(b"".join)
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=8)


def mutate(data: bytes, operations: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) operations: replace, flip a bit, insert, delete, repeat."""
    buf = bytearray(data)
    for kind, position, value in operations:
        index = position % (len(buf) + 1)
        if kind == 0 and index < len(buf):
            buf[index] = value
        elif kind == 1 and index < len(buf):
            buf[index] ^= 1 << (value % 8)
        elif kind == 2:
            buf[index:index] = bytes((value,))
        elif kind == 3:
            del buf[index : index + value % 16]
        else:
            buf[index:index] = buf[index : index + value % 64]
    return bytes(buf)


mutations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4),
        st.integers(min_value=0),
        st.integers(min_value=0, max_value=255),
    ),
    max_size=10,
)


@cache
def real_frames() -> tuple[Frame, ...]:
    """The frames of the reference recordings, or a small built-in set when they are absent."""
    frames_seen: list[Frame] = []
    for name in RECORDINGS:
        path = REFERENCE_DATA / "recordings" / name
        if path.is_file():
            items = read_recording(path.read_bytes())
            frames_seen += [item.frame for item in items if isinstance(item, RecordedFrame)]
    if frames_seen:
        return tuple(frames_seen)
    return (
        Packet(0x0010, 0x7E11, 0x0100, bytes(range(0x70, 0xD4))),
        Packet(0x0010, 0x7E31, 0x0100, bytes(48)),
        Datagram(0x0000, 0x7E11, 0x0500),
        Telegram(0x7771, 0x2011, 0x05, bytes.fromhex("6018ab04000000")),
    )


@st.composite
def real_segments(draw: st.DrawFn, max_frames: int = 40) -> bytes:
    """A run of consecutive real frames, as wire bytes."""
    corpus = real_frames()
    start = draw(st.integers(min_value=0, max_value=len(corpus) - 1))
    count = draw(st.integers(min_value=1, max_value=max_frames))
    return b"".join(frame.encode() for frame in corpus[start : start + count])
