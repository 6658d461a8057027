"""An asyncio library for RESOL VBus: frames, stream receiver, specification, recordings.

This package never imports Home Assistant; it uses the standard library only.
"""

from .errors import RecordingError, SpecificationError, VBusError
from .protocol import Datagram, Frame, Packet, Telegram, decode_frame
from .receiver import StreamReceiver
from .specification import Specification

__all__ = [
    "Datagram",
    "Frame",
    "Packet",
    "RecordingError",
    "Specification",
    "SpecificationError",
    "StreamReceiver",
    "Telegram",
    "VBusError",
    "decode_frame",
]
