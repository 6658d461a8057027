"""Property-based fuzzing of the recording reader (issue 8, §1).

See :func:`~.harness.recording_target` for the invariants.
"""

from __future__ import annotations

import struct
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from aiovbus.recording import (
    Comment,
    HeaderSetStart,
    RawData,
    RecordedFrame,
    read_recording,
    write_recording,
)
from tests.vbus_lib.conftest import RECORDINGS, reference_file

from .conftest import fuzz
from .harness import recording_target
from .strategies import frames, mutate, mutations

TIMESTAMPS = st.integers(min_value=0, max_value=2**64 - 1)
CHANNELS = st.integers(min_value=0, max_value=0xFF)

items = st.one_of(
    st.builds(HeaderSetStart, TIMESTAMPS),
    st.tuples(TIMESTAMPS, frames, CHANNELS).map(
        lambda args: RecordedFrame(args[0], _on_channel(args[1], args[2]))
    ),
    st.builds(RawData, TIMESTAMPS, TIMESTAMPS, CHANNELS, st.binary(max_size=300)),
    st.builds(Comment, TIMESTAMPS, st.text(max_size=100)),
)


def _on_channel(frame, channel: int):
    return replace(frame, channel=channel)


def _record(kind: int, length: int, length2: int, timestamp: int, body: bytes) -> bytes:
    return struct.pack("<BBHHQ", 0xA5, kind, length, length2, timestamp) + body


#: Record headers with any type, lengths that agree or not, and short or long bodies.
raw_records = st.builds(
    _record,
    st.sampled_from((0x44, 0x77, 0x66, 0x33, 0x88, 0x99, 0x55, 0x12)),
    st.integers(min_value=0, max_value=80),
    st.integers(min_value=0, max_value=80),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.binary(max_size=60),
)


@fuzz(300)
@given(st.binary(max_size=3000))
def test_random_bytes(data: bytes) -> None:
    recording_target(data)


@fuzz(300)
@given(st.lists(st.one_of(raw_records, st.binary(max_size=30)), max_size=20).map(b"".join))
def test_record_headers_and_garbage(data: bytes) -> None:
    recording_target(data)


@fuzz(80)
@given(st.lists(items, max_size=12), mutations)
def test_mutated_recordings(written, operations) -> None:
    data = write_recording(written)
    assert list(read_recording(data)) == written
    recording_target(mutate(data, operations))


@fuzz(25)
@given(st.sampled_from(RECORDINGS), st.integers(min_value=0), mutations)
def test_mutated_reference_recordings(name: str, start: int, operations) -> None:
    data = reference_file("recordings", name).read_bytes()
    offset = start % len(data)
    recording_target(mutate(data[offset : offset + 20_000], operations))


def test_truncated_reference_recording_at_every_record_boundary_and_inside() -> None:
    data = reference_file("recordings", RECORDINGS[0]).read_bytes()
    full = list(read_recording(data))
    for end in range(0, 3000, 7):
        items_read = list(read_recording(data[:end]))
        assert items_read == full[: len(items_read)]
