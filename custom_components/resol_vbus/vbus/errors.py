"""Typed exceptions of the VBus library.

Every error the library raises on purpose derives from :class:`VBusError`, so callers can tell
expected conditions (bad files, rejected passwords, unreachable devices) from programming errors.
"""

from __future__ import annotations


class VBusError(Exception):
    """Base class of all errors raised by this library."""


class SpecificationError(VBusError):
    """A VBus specification file (VSF) or the bundled specification data is invalid."""


class RecordingError(VBusError):
    """A VBus recording cannot be read or written."""
