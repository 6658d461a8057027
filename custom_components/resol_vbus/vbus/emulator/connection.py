"""Personalities and the handshake: one client connection, from ``+HELLO`` to data mode."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from ..aio import reset_connection
from ..receiver import StreamReceiver

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .server import Channel, Emulator

_HIGH_WATER: Final = 1 << 20  # a client this far behind loses data, as on a real logger


class Personality(StrEnum):
    """Which device the emulator pretends to be."""

    LAN = "lan"
    DL2 = "dl2"
    DL3 = "dl3"
    VBUSNET = "vbusnet"
    KM2 = "km2"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class _Product:
    product: str
    serial: str
    version: str
    build: str
    features: tuple[str, ...]


# Serials: RESOL OUI 00:1E:66 except the KM2 (Dragino OUI A8:40:41, as reported for real KM2s);
# the raw gateway poses as a DL2 with serial 001E66000000 like the reference's serial-to-tcp.
PRODUCTS: Final = {
    Personality.LAN: _Product("VBus/LAN", "001E66E7A00B", "1.4.0", "201507230915", ("vbus",)),
    Personality.DL2: _Product("DL2", "001E66E7A002", "2.2.0", "201404290926", ("vbus", "dl2")),
    Personality.DL3: _Product(
        "DL3", "001E66E7A003", "2.1.0", "201311280853", ("vbus", "dl2", "dl3")
    ),
    Personality.VBUSNET: _Product("VBus.net", "001E66E7A00C", "1.0.0", "201601010000", ("vbus",)),
    Personality.KM2: _Product("KM2", "A84041E7A00A", "1.3.1", "201910150800", ("vbus", "wifi")),
    Personality.RAW: _Product("DL2", "001E66000000", "2.2.0", "201404290926", ("vbus", "dl2")),
}


class _Outcome(StrEnum):
    CONTINUE = "continue"
    DATA = "data"
    QUIT = "quit"


def _error(text: str) -> str:
    return "-ERROR: " + json.dumps(f"Error: {text}")


class Connection:
    """One client connection: the handshake, then data mode on a channel."""

    #: Data-mode units are dropped while more than this many bytes wait to be sent.
    high_water = _HIGH_WATER

    def __init__(
        self,
        emulator: Emulator,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """Serve the client behind ``reader`` and ``writer`` for ``emulator``.

        ``on_close`` is called once the connection closed (by the client, a fault or a stop).
        """
        self.emulator = emulator
        self._on_close = on_close
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.connected_via = False
        self.channel_number = emulator.default_channel
        self.channel: Channel | None = None
        self.data_sent = 0
        self.closed = False

    # sending -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not self.closed and data and not self.emulator.faults.silent:
            self.writer.write(data)

    def line(self, text: str) -> None:
        """Send one handshake line (CR LF is added)."""
        self._write(text.encode("utf-8") + b"\r\n")

    def send(self, units: Sequence[bytes], prefix: bytes = b"") -> None:
        """Send data-mode ``units`` (after ``prefix``), applying the connection faults."""
        faults = self.emulator.faults
        if self.closed or faults.silent:
            return
        if self.writer.transport.get_write_buffer_size() > self.high_water:
            return
        out = bytearray(prefix)
        cut = False
        for unit in units:
            limit = faults.drop_after_bytes
            chunk = unit
            if limit is not None and self.data_sent + len(unit) >= limit:
                cut = True
                if faults.cut_mid_frame:
                    chunk = unit[: max(limit - self.data_sent, 0)]
            out += self._corrupted(chunk, faults.corrupt_every)
            if cut:
                break
        self._write(bytes(out))
        if cut:
            self.close(partial=False)

    def _corrupted(self, chunk: bytes, every: int | None) -> bytes:
        start = self.data_sent
        self.data_sent += len(chunk)
        if not every or every < 1:
            return chunk
        data = bytearray(chunk)
        for position in range(every - 1 - start % every, len(data), every):
            data[position] ^= 0x01
        return bytes(data)

    def close(self, *, partial: bool = True) -> None:
        """Close the connection (cutting a frame first when ``cut_mid_frame`` asks for it)."""
        if self.closed:
            return
        faults = self.emulator.faults
        if partial and faults.cut_mid_frame and self.channel is not None:
            self._write(self.channel.partial_frame())
        self.closed = True
        if faults.hard_close:
            reset_connection(self.writer)
        else:
            self.writer.close()
        if self._on_close is not None:
            self._on_close()

    # receiving ---------------------------------------------------------------------------

    async def serve(self, *, handshake: bool = True) -> None:
        """Serve until the client or a fault closes the connection, then leave and close it.

        Without ``handshake`` the connection is in data mode at once (a raw gateway does that
        by its personality, a serial port always).
        """
        try:
            await (self.run() if handshake else self.stream())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if self.channel is not None:
                self.channel.detach(self)
            self.close(partial=False)

    async def run(self) -> None:
        """Serve the connection until the client or a fault closes it."""
        if self.emulator.personality == Personality.RAW:
            await self.stream()
            return
        self.line(f"+HELLO {self.emulator.greeting}")
        while not self.closed:
            try:
                raw = await self.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                self.line(_error("Line too long"))
                return
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            outcome = self._command(text)
            if outcome == _Outcome.DATA:
                await self._data_mode(b"+OK: Data incoming...\r\n")
                return
            if outcome == _Outcome.QUIT:
                await self.writer.drain()
                return

    async def stream(self) -> None:
        """Data mode without a handshake, on :attr:`channel_number`, until the client closes."""
        await self._data_mode(b"")

    async def _data_mode(self, prefix: bytes) -> None:
        channel = self.emulator._channels[self.channel_number]  # noqa: SLF001 - same package
        self.channel = channel
        channel.attach(self, prefix)
        receiver = StreamReceiver(self.channel_number)
        while data := await self.reader.read(65536):
            for frame in receiver.feed(data):
                channel.from_client(self, frame)

    def _command(self, line: str) -> _Outcome:
        word, _space, argument = line.partition(" ")
        if word not in self.emulator.commands:
            self.line(_error("Unknown command"))
            return _Outcome.CONTINUE
        if word in _NEED_PASSWORD and not self.authenticated:
            self.line(_error("Password required"))
            return _Outcome.CONTINUE
        handlers: dict[str, Callable[[str], _Outcome]] = {
            "CONNECT": self._connect,
            "PASS": self._pass,
            "CHANNELLIST": self._channel_list,
            "CHANNEL": self._channel,
            "DATA": self._data,
            "QUIT": self._quit,
        }
        return handlers[word](argument)

    def _connect(self, via_tag: str) -> _Outcome:
        self.connected_via = via_tag in self.emulator.via_tags
        if self.connected_via:
            self.line("+OK: Connection established")
        else:
            self.authenticated = False
            self.line(_error("Unknown via tag"))
        return _Outcome.CONTINUE

    def _pass(self, password: str) -> _Outcome:
        emulator = self.emulator
        if "CONNECT" in emulator.commands and not self.connected_via:
            self.line(_error("CONNECT to a device first"))
            return _Outcome.CONTINUE
        self.authenticated = password == emulator.password and not emulator.faults.refuse_password
        self.line("+OK: Password accepted" if self.authenticated else _error("Password rejected"))
        return _Outcome.CONTINUE

    def _channel_list(self, _argument: str) -> _Outcome:
        for number, name in self.emulator.channel_names.items():
            self.line(f"*{number}:{name}")
        self.line("+OK: Now you know my fellows...")
        return _Outcome.CONTINUE

    def _channel(self, argument: str) -> _Outcome:
        emulator = self.emulator
        if (
            emulator.faults.reject_channel
            or not argument.isdigit()
            or int(argument) not in emulator
        ):
            self.line(_error("Channel not available"))
            return _Outcome.CONTINUE
        self.channel_number = int(argument)
        self.line("+OK: Channel selected")
        return _Outcome.CONTINUE

    def _data(self, _argument: str) -> _Outcome:
        if self.emulator.faults.reject_data:
            self.line(_error("Data mode not available"))
            return _Outcome.CONTINUE
        return _Outcome.DATA

    def _quit(self, _argument: str) -> _Outcome:
        self.line("+OK: Bye")
        return _Outcome.QUIT


COMMANDS: Final = frozenset({"PASS", "DATA", "QUIT"})
CHANNEL_COMMANDS: Final = frozenset({"CHANNELLIST", "CHANNEL"})
_NEED_PASSWORD: Final = frozenset({"CHANNELLIST", "CHANNEL", "DATA"})
