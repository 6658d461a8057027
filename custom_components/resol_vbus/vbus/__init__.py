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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import RecordingError, SpecificationError, VBusError
    from .protocol import Datagram, Frame, Packet, Telegram, decode_frame
    from .receiver import StreamReceiver
    from .session import ConnectionConfig, VBusSession
    from .specification import Specification

__version__ = "0.1.0"

# The names below come from their modules when first used: importing the package (and running
# the ``vbus`` command) loads only what is needed.
_HOMES = {
    "RecordingError": "errors",
    "SpecificationError": "errors",
    "VBusError": "errors",
    "Datagram": "protocol",
    "Frame": "protocol",
    "Packet": "protocol",
    "Telegram": "protocol",
    "decode_frame": "protocol",
    "StreamReceiver": "receiver",
    "ConnectionConfig": "session",
    "VBusSession": "session",
    "Specification": "specification",
}


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules on first use."""
    home = _HOMES.get(name)
    if home is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(f".{home}", __name__), name)


__all__ = [
    "ConnectionConfig",
    "Datagram",
    "Frame",
    "Packet",
    "RecordingError",
    "Specification",
    "SpecificationError",
    "StreamReceiver",
    "Telegram",
    "VBusError",
    "VBusSession",
    "decode_frame",
]
