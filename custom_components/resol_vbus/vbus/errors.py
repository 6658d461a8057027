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


class VBusConnectionError(VBusError):
    """The device could not be reached, or the connection broke."""


class VBusTimeoutError(VBusConnectionError):
    """The device did not answer (or stopped sending data) in time."""


class UnexpectedReplyError(VBusConnectionError):
    """The device's answer is not VBus over TCP (no line break, a flood of reply lines)."""


class HandshakeError(VBusError):
    """The device answered a handshake command with a ``-`` line.

    ``step`` names the command (``CONNECT``, ``PASS``, ``CHANNELLIST``, ``CHANNEL``, ``DATA``);
    ``reply`` is the device's line, with any secret removed.
    """

    def __init__(self, step: str, reply: str) -> None:
        """Create the error for ``step`` with the device's ``reply``."""
        super().__init__(f"{self.summary} ({step}): {reply}")
        self.step = step
        self.reply = reply

    summary = "The device rejected a command"


class ViaTagRejectedError(HandshakeError):
    """VBus.net does not know the via tag (CONNECT was refused)."""

    summary = "VBus.net rejected the via tag"


class AuthenticationError(HandshakeError):
    """The device rejected the password."""

    summary = "The device rejected the password"


class ChannelNotAvailableError(HandshakeError):
    """The datalogger has no such VBus channel."""

    summary = "The datalogger rejected the channel"


class DataModeRejectedError(HandshakeError):
    """The device refused to switch to data mode."""

    summary = "The device refused to send data"


class UnknownCommandError(HandshakeError):
    """The device does not know the command (e.g. CONNECT sent to a VBus/LAN adapter)."""

    summary = "The device does not support the command"


class EmulatorError(VBusError):
    """The emulator cannot emulate what it was asked to (unknown controller, bad value list)."""


class NoDataError(VBusTimeoutError):
    """The device accepted the connection but sent no valid VBus packet in time."""
