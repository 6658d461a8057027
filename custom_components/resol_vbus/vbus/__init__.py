"""An asyncio library for RESOL VBus: frames, stream receiver, specification, recordings.

This package never imports Home Assistant; it uses the standard library only.
"""

if __name__ == "vbus":  # imported top-level: PYTHONPATH=custom_components/resol_vbus python -m vbus
    # The integration's folder also holds Home Assistant platform modules named like standard
    # library modules (select.py); keep that folder from shadowing the standard library.
    # Submodules of this package are found through its __path__, not sys.path.
    import os as _os
    import sys as _sys

    _folder = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))  # noqa: PTH100, PTH120
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _folder]  # noqa: PTH100

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
