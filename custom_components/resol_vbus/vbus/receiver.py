"""Incremental VBus stream receiver.

Feed arbitrary chunks of the live byte stream; complete, checksum-valid frames come out in stream
order. The behaviour follows the reference receiver exactly (see the protocol reference, §8):
SYNC starts a new frame and discards an unfinished one, any other byte with bit 7 set aborts
the frame in progress, frames with bad checksums or unsupported versions are junk, and at most
1024 unconsumed bytes are kept between calls. It never raises on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .protocol import SYNC, Frame, decode_framed, frame_length

MAX_BUFFER: Final = 1024
MAX_REMEMBERED: Final = 256
# In a run of SYNC bytes each one aborts the frame before it: only the last can start a frame.
# Skipping the run in one step keeps a SYNC flood as cheap as other junk.
_SYNC_RUN: Final = re.compile(bytes((SYNC,)) + b"+")


@dataclass(slots=True)
class ReceiverStats:
    """Counters of a :class:`StreamReceiver`."""

    bytes: int = 0
    frames: int = 0
    junk_bytes: int = 0
    checksum_errors: int = 0


class StreamReceiver:
    """Turns a VBus byte stream into frames."""

    __slots__ = ("_buffer", "_last", "channel", "stats")

    def __init__(self, channel: int = 0) -> None:
        """Create a receiver whose frames carry ``channel``."""
        self._buffer = b""
        # Controllers repeat most frames unchanged (every second); the last frame per header is
        # remembered so that a repeated frame is returned as the same object without decoding.
        self._last: dict[bytes, tuple[bytes, Frame]] = {}
        self.channel = channel
        self.stats = ReceiverStats()

    @property
    def buffered(self) -> int:
        """Number of bytes kept for the next call."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget buffered bytes (e.g. after a reconnect); counters are kept."""
        self._buffer = b""
        self._last.clear()

    def _decode(self, wire: bytes) -> Frame | None:
        key = wire[1:8]  # addresses, version and command
        last = self._last.get(key)
        if last is not None and last[0] == wire:
            return last[1]
        frame = decode_framed(wire, self.channel)
        if frame is not None:
            if len(self._last) >= MAX_REMEMBERED:
                self._last.clear()
            self._last[key] = (wire, frame)
        return frame

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume ``data`` and return the frames completed by it."""
        stats = self.stats
        stats.bytes += len(data)
        buf = self._buffer + bytes(data) if self._buffer else bytes(data)
        size = len(buf)
        frames: list[Frame] = []
        consumed = 0  # bytes before this index are emitted or counted as junk
        search = 0  # where to look for the next SYNC
        while True:
            start = buf.find(SYNC, search)
            if start < 0:
                break
            stats.junk_bytes += start - consumed
            consumed = start
            if start + 1 < size and buf[start + 1] == SYNC:
                run = _SYNC_RUN.match(buf, start)
                assert run is not None  # noqa: S101 - buf[start] is SYNC
                search = run.end() - 1
                continue
            length = frame_length(buf[start : start + 9])
            if not length or start + length > size:
                # Incomplete frame: wait for more bytes unless a high byte already aborted it.
                # An unknown version (length 0) never completes; the next SYNC ends it.
                if length != 0 and buf[start + 1 :].isascii():
                    break
                search = start + 1
                continue
            end = start + length
            if not buf[start + 1 : end].isascii():
                search = start + 1
                continue
            frame = self._decode(buf[start:end])
            if frame is None:
                stats.junk_bytes += length
                if buf[start + 5] in (0x10, 0x20, 0x30):
                    stats.checksum_errors += 1
            else:
                frames.append(frame)
            consumed = search = end
        rest = buf[consumed:]
        if len(rest) > MAX_BUFFER:
            stats.junk_bytes += len(rest) - MAX_BUFFER
            rest = rest[-MAX_BUFFER:]
        self._buffer = rest
        stats.frames += len(frames)
        return frames
