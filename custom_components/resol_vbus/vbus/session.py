"""VBus over TCP or a serial port: handshake, live connection, self-healing session, probe.

``connect()`` performs the text handshake of DL2, DL3, KM2, VBus/LAN and VBus.net
(``+HELLO`` → ``CONNECT <via tag>`` only for VBus.net → ``PASS`` → optional ``CHANNELLIST`` /
``CHANNEL`` → ``DATA``) and returns a :class:`VBusConnection` streaming frames. Every ``-`` reply
becomes a typed :class:`~.errors.HandshakeError` naming the step. A serial port (a VBus/USB
adapter, a controller's USB port, a UART with an optocoupler: 9600 baud, 8N1) carries the raw
bus without any handshake; it is opened with ``serialx``, the library Home Assistant ships.

:class:`VBusSession` keeps a connection alive for as long as it runs: reconnects with capped
exponential backoff and jitter, treats a silent link as dead (watchdog), delivers frames to
subscribers and reports state changes once each, so a front end can log "lost"/"back" once.
Rejections of the configuration (a ``-`` reply to PASS, CONNECT or CHANNEL) stop it instead of
retrying; every other failure is retried.

:func:`probe` is the one-shot check a configuration dialog runs.

The password and via tag never appear in log lines, exception texts or ``repr()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from .aio import cancel_and_wait
from .errors import (
    AuthenticationError,
    ChannelNotAvailableError,
    DataModeRejectedError,
    HandshakeError,
    NoDataError,
    UnexpectedReplyError,
    UnknownCommandError,
    VBusConnectionError,
    VBusError,
    VBusTimeoutError,
    ViaTagRejectedError,
)
from .protocol import Frame, Packet
from .receiver import StreamReceiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

    from .specification import Specification

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT: Final = 7053
DEFAULT_TLS_PORT: Final = 57053
DEFAULT_PASSWORD: Final = "vbus"  # noqa: S105 - the devices' documented factory default
MAX_LINE: Final = 4096
MAX_REPLY: Final = 65536  # bytes of ``*`` lines one command may get (a DL3 sends about 100)
READ_SIZE: Final = 65536
SERIAL_BAUDRATE: Final = 9600  # every VBus: 9600 baud, 8 data bits, no parity, 1 stop bit
_CHANNEL_LINE: Final = re.compile(r"^\*(\d{1,9}):(.*)$")
# A line ends at CR or LF; a run of them (empty lines, skipped anyway) is consumed in one step.
_LINE_BREAK: Final = re.compile(rb"[\r\n]+")
# What a command argument may hold: one line of Latin-1 (the devices' character set).
_SENDABLE: Final = re.compile(r"[^\r\n\u0100-\U0010ffff]*")


class Step(StrEnum):
    """Steps of the handshake, as named in errors."""

    GREETING = "GREETING"
    CONNECT = "CONNECT"
    PASS = "PASS"  # noqa: S105 - the command's name, not a password
    CHANNELLIST = "CHANNELLIST"
    CHANNEL = "CHANNEL"
    DATA = "DATA"


_STEP_ERRORS: Final[dict[str, type[HandshakeError]]] = {
    Step.CONNECT: ViaTagRejectedError,
    Step.PASS: AuthenticationError,
    Step.CHANNEL: ChannelNotAvailableError,
    Step.DATA: DataModeRejectedError,
}

#: The steps whose ``-`` reply retrying cannot fix: the password, the via tag or the channel
#: has to change. A ``-`` reply to anything else (the greeting, DATA) is retried like a lost link.
CONFIGURATION_STEPS: Final = frozenset({Step.CONNECT, Step.PASS, Step.CHANNEL})


def is_configuration_error(err: BaseException) -> bool:
    """Whether ``err`` rejects the configuration (a ``-`` reply to PASS, CONNECT or CHANNEL).

    Decided by the step, not by the reply's text: "unknown command" in answer to CONNECT (a via
    tag sent to a VBus/LAN) or CHANNEL (a channel for a DL2) is one, in answer to DATA it is not.
    """
    return isinstance(err, HandshakeError) and err.step in CONFIGURATION_STEPS


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """Where and how to connect. ``repr()`` hides the password and the via tag.

    Either ``host`` (VBus over TCP) or ``serial_port`` (a device path such as
    ``/dev/serial/by-id/usb-…``, raw bytes at 9600 baud 8N1, no handshake) is given.
    """

    host: str = ""
    serial_port: str | None = None
    port: int = DEFAULT_PORT
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    via_tag: str | None = field(default=None, repr=False)
    channel: int | None = None
    tls: bool | ssl.SSLContext = field(default=False, repr=False)
    raw: bool = False
    connect_timeout: float = 10.0
    reply_timeout: float = 10.0

    def __post_init__(self) -> None:
        """Reject a configuration that names no device, or a host and a serial port at once."""
        if bool(self.host) == bool(self.serial_port):
            msg = "Give either a host or a serial port"
            raise ValueError(msg)

    @property
    def target(self) -> str:
        """Where this connects to, for logs and messages: ``host:port`` or the serial port."""
        return self.serial_port or f"{self.host}:{self.port}"

    def redact(self, text: str) -> str:
        """``text`` with the password and via tag replaced by ``***``.

        Whatever the far end does to a secret it echoes: any letter case, also where case
        folding changes the length ("Straße" as "STRASSE"), and whitespace added, removed or
        changed anywhere in it or around it. Linear in ``text`` (it comes from the network): one
        pass folds it, ``str.find`` searches it; no regular expression.

        The factory default password is no secret (it is printed in every manual) and stays:
        redacting it would garble every "VBus" in what the device says, channel names included.
        """
        password = None if self.password.casefold() == DEFAULT_PASSWORD else self.password
        secrets = [secret for secret in (password, self.via_tag) if secret]
        for secret in secrets:
            if secret.isspace():  # nothing to fold: only as it is
                text = text.replace(secret, "***")
        skeleton, origins = _skeleton(text)
        spans: list[tuple[int, int]] = []  # of text, one sorted run per secret
        for secret in secrets:
            needle = _skeleton(secret)[0]
            start = skeleton.find(needle) if needle else -1
            while start >= 0:
                end = start + len(needle)
                spans.append((origins[start], origins[end - 1] + 1))
                start = skeleton.find(needle, end)
        parts: list[str] = []
        done = 0  # the text before this index is in parts or redacted
        for start, end in sorted(spans):  # two sorted runs: merged in linear time
            if start > done or not parts:
                parts += (text[done:start], "***")
            done = max(done, end)
        parts.append(text[done:])
        return "".join(parts)


def _skeleton(text: str) -> tuple[str, list[int]]:
    """``text`` case-folded, without whitespace; per character, the index in ``text`` it is from."""
    folded: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        if not char.isspace():
            fold = char.casefold()  # one to three characters: "ß" is "ss"
            folded.append(fold)
            origins += [index] * len(fold)
    return "".join(folded), origins


@dataclass(frozen=True, slots=True)
class Channel:
    """A VBus channel of a DL3 (from ``CHANNELLIST``)."""

    number: int
    name: str


@dataclass(slots=True)
class ConnectionStats:
    """Counters of one connection or, summed, of a session."""

    bytes: int = 0
    frames: int = 0
    junk_bytes: int = 0
    checksum_errors: int = 0
    last_frame_time: float | None = None


class _Lines:
    """Reads CR/LF-terminated handshake lines and keeps what follows them.

    Linear in its input: a line is found by scanning from where the previous one ended, and
    consumed bytes are dropped only when more must be read (a flood of line breaks costs one
    scan, not one copy of the buffer per line).
    """

    def __init__(self, reader: asyncio.StreamReader, config: ConnectionConfig) -> None:
        self.reader = reader
        self._config = config
        self._buffer = bytearray()
        self._start = 0  # the bytes before this offset are consumed

    @property
    def buffer(self) -> bytes:
        """What arrived after the last line read (the first bytes of data mode)."""
        return bytes(self._buffer[self._start :])

    async def line(self, step: Step, deadline: float) -> str:
        """The next non-empty line; it must be complete by ``deadline`` (event-loop time).

        The deadline covers the whole line, not each read: a device that trickles a byte now
        and then must not keep the handshake waiting forever.
        """
        while True:
            match = _LINE_BREAK.search(self._buffer, self._start)
            if match is not None:
                line = self._buffer[self._start : match.start()]
                self._start = match.end()
                text = line.decode("latin-1").strip()
                if text:
                    return text
                continue
            del self._buffer[: self._start]
            self._start = 0
            if len(self._buffer) > MAX_LINE:
                msg = f"The device sent no line break in {MAX_LINE} bytes ({step})"
                raise UnexpectedReplyError(msg)
            self._buffer += await self._read(step, deadline)

    async def _read(self, step: Step, deadline: float) -> bytes:
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                chunk = await self.reader.read(READ_SIZE)
        except OSError as err:  # reset, broken pipe, TLS failure, the step's deadline ...
            # The deadline's TimeoutError, not the socket's own (ETIMEDOUT is a TimeoutError too).
            if timeout.expired():
                msg = f"The device did not answer within {self._config.reply_timeout:g} s ({step})"
                raise VBusTimeoutError(msg) from err
            msg = f"The connection broke during the handshake ({step}): {_reason(err)}"
            raise VBusConnectionError(msg) from err
        if not chunk:
            msg = f"The device closed the connection ({step})"
            raise VBusConnectionError(msg)
        # A read from the stream's buffer does not yield: let the event loop run between reads,
        # so that a flood costs the loop at most one read's work at a time.
        await asyncio.sleep(0)
        return chunk


class VBusConnection:
    """A connection in data mode: raw VBus bytes in both directions."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        channel: int = 0,
        channels: tuple[Channel, ...] = (),
        initial: bytes = b"",
        clock: Callable[[], float] = time.monotonic,
        io_errors: tuple[type[Exception], ...] = (OSError,),
        connected_on_data: bool = False,
    ) -> None:
        """Wrap streams that are already in data mode; ``initial`` are bytes read with DATA.

        ``io_errors`` are the exceptions the streams raise when the link fails (a serial
        library adds its own to :class:`OSError`). ``connected_on_data``: the link counts as
        connected only once a valid frame arrives (a serial port: that it opens proves only
        that the adapter is plugged in, not that a bus is behind it).
        """
        self._reader = reader
        self._writer = writer
        self._io_errors = io_errors
        self.connected_on_data = connected_on_data
        self._clock = clock
        self._pending = initial
        self.channels = channels
        self.receiver = StreamReceiver(channel)
        self.stats = ConnectionStats()

    @property
    def channel(self) -> int:
        """The VBus channel this connection streams (0 without channel selection)."""
        return self.receiver.channel

    async def read_frames(self) -> list[Frame]:
        """Wait for the next chunk of bytes and return the frames it completed (maybe none).

        Raises :class:`~.errors.VBusConnectionError` when the device closes the connection.
        """
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            try:
                data = await self._reader.read(READ_SIZE)
            except self._io_errors as err:
                msg = f"The connection broke: {_reason(err)}"
                raise VBusConnectionError(msg) from err
            if not data:
                msg = "The device closed the connection"
                raise VBusConnectionError(msg)
        # A read from the stream's buffer does not yield: let the event loop run between reads.
        await asyncio.sleep(0)
        frames = self.receiver.feed(data)
        stats, rx = self.stats, self.receiver.stats
        stats.bytes, stats.frames = rx.bytes, rx.frames
        stats.junk_bytes, stats.checksum_errors = rx.junk_bytes, rx.checksum_errors
        if frames:
            stats.last_frame_time = self._clock()
        return frames

    async def send(self, frame: Frame) -> None:
        """Send ``frame`` (e.g. a parameterization datagram) to the bus."""
        try:
            self._writer.write(frame.encode())
            await self._writer.drain()
        except self._io_errors as err:
            msg = f"The connection broke while sending: {_reason(err)}"
            raise VBusConnectionError(msg) from err

    async def close(self) -> None:
        """Close the connection (there is no way back from data mode, so no QUIT)."""
        await _close(self._writer)

    def abort(self) -> None:
        """Drop the connection at once (the pending read then ends)."""
        self._writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(2):
            await writer.wait_closed()


def _ssl_context(config: ConnectionConfig) -> ssl.SSLContext | None:
    if isinstance(config.tls, ssl.SSLContext):
        return config.tls
    return ssl.create_default_context() if config.tls else None


async def _open_serial(
    config: ConnectionConfig, clock: Callable[[], float] = time.monotonic
) -> VBusConnection:
    """Open ``config.serial_port`` at 9600 baud 8N1, exclusively (one program holds a port)."""
    import serialx  # noqa: PLC0415 - only serial connections need it; keeps start-up short

    port = config.serial_port
    try:
        async with asyncio.timeout(config.connect_timeout):
            reader, writer = await serialx.open_serial_connection(
                port, baudrate=SERIAL_BAUDRATE, exclusive=True
            )
    except TimeoutError as err:
        msg = f"Timed out opening the serial port {port}"
        raise VBusTimeoutError(msg) from err
    except (OSError, serialx.SerialException, ValueError) as err:
        msg = f"Cannot open the serial port {port}: {_reason(err)}"
        raise VBusConnectionError(msg) from err
    return VBusConnection(
        reader,
        writer,
        channel=config.channel or 0,
        clock=clock,
        io_errors=(OSError, serialx.SerialException),
        connected_on_data=True,
    )


async def _open(config: ConnectionConfig) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = _ssl_context(config)
    try:
        async with asyncio.timeout(config.connect_timeout):
            return await asyncio.open_connection(
                config.host,
                config.port,
                ssl=context,
                server_hostname=config.host if context else None,
                limit=READ_SIZE,
            )
    except TimeoutError as err:
        msg = f"Timed out connecting to {config.host}:{config.port}"
        raise VBusTimeoutError(msg) from err
    except ssl.SSLError as err:
        msg = f"TLS with {config.host}:{config.port} failed: {_reason(err)}"
        raise VBusConnectionError(msg) from err
    except OSError as err:
        msg = f"Cannot connect to {config.host}:{config.port}: {_reason(err)}"
        raise VBusConnectionError(msg) from err
    except UnicodeError as err:  # a host name that is no valid DNS name (a label too long)
        msg = f"Cannot connect to {config.host}:{config.port}: invalid host name"
        raise VBusConnectionError(msg) from err


def _reason(err: BaseException) -> str:
    """A short text for an I/O error (``str()`` of some is empty, e.g. a bare reset)."""
    reason = getattr(err, "reason", None)  # ssl.SSLError's short text (absent on some)
    if isinstance(err, ssl.SSLError) and reason:
        return str(reason)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


class _Handshake:
    """Sends handshake commands and classifies the replies."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: ConnectionConfig
    ) -> None:
        self.lines = _Lines(reader, config)
        self.writer = writer
        self.config = config

    async def command(self, step: Step, argument: str | None = None) -> list[str]:
        """Send a command; return its ``*`` lines once the closing ``+`` line arrives."""
        if argument is not None and not _SENDABLE.fullmatch(argument):
            # Sending it would cut the line or add a command; no retry can help.
            reply = "not sent: it holds a line break or a character outside Latin-1"
            raise _STEP_ERRORS.get(step, HandshakeError)(step, reply)
        text = step.value if argument is None else f"{step.value} {argument}"
        _LOGGER.debug("Sending %s", step.value)
        try:
            self.writer.write(text.encode("latin-1") + b"\r\n")
            await self.writer.drain()
        except OSError as err:
            msg = f"The connection broke during the handshake ({step}): {_reason(err)}"
            raise VBusConnectionError(msg) from err
        return await self.replies(step)

    async def replies(self, step: Step) -> list[str]:
        """Collect ``*`` lines until a ``+`` line; raise the step's error on a ``-`` line.

        Lines are classified by their first character only, as the reference client does: a
        line that starts with none of ``+``, ``-`` and ``*`` is skipped (only an explicit
        ``-`` reply is a rejection). The whole reply must arrive within ``reply_timeout`` and
        hold at most ``MAX_REPLY`` bytes of lines.
        """
        payload: list[str] = []
        size = 0
        # One deadline for the whole reply of a step, however its bytes are spread out.
        deadline = asyncio.get_running_loop().time() + self.config.reply_timeout
        while True:
            line = await self.lines.line(step, deadline)
            if line.startswith("+"):
                return payload
            size += len(line)
            if size > MAX_REPLY:
                msg = f"The device sent more than {MAX_REPLY} bytes of reply lines ({step})"
                raise UnexpectedReplyError(msg)
            if line.startswith("*"):
                payload.append(line)
            elif line.startswith("-"):
                reply = self.config.redact(line)
                _LOGGER.debug("Device rejected %s: %s", step.value, reply)
                if "unknown command" in line.lower():
                    raise UnknownCommandError(step, reply)
                raise _STEP_ERRORS.get(step, HandshakeError)(step, reply)

    async def quit(self) -> None:
        """Say goodbye politely (text mode only)."""
        with contextlib.suppress(OSError):
            self.writer.write(b"QUIT\r\n")
            await self.writer.drain()
        await _close(self.writer)


async def _authenticate(handshake: _Handshake) -> None:
    config = handshake.config
    await handshake.replies(Step.GREETING)
    if config.via_tag:
        await handshake.command(Step.CONNECT, config.via_tag)
    await handshake.command(Step.PASS, config.password)


async def _channel_list(handshake: _Handshake) -> tuple[Channel, ...]:
    """The DL3's channels; devices without channels answer "unknown command": none.

    The names are redacted: whoever answers may have filled them with the password it got,
    and they are shown (a configuration dialog's choices) and logged (diagnostics).
    """
    try:
        lines = await handshake.command(Step.CHANNELLIST)
    except UnknownCommandError:
        return ()
    redact = handshake.config.redact
    channels = []
    for line in lines:
        match = _CHANNEL_LINE.match(line)
        if match:
            channels.append(Channel(int(match.group(1)), redact(match.group(2).strip())))
    return tuple(channels)


@contextlib.asynccontextmanager
async def _handshaking(config: ConnectionConfig) -> AsyncIterator[_Handshake]:
    """Open a connection for a handshake; on failure say QUIT (after a ``-`` reply) or close."""
    reader, writer = await _open(config)
    handshake = _Handshake(reader, writer, config)
    try:
        yield handshake
    except HandshakeError:
        await handshake.quit()
        raise
    except (OSError, EOFError) as err:  # a safety net: the steps convert what they expect
        await _close(writer)
        msg = f"The connection broke during the handshake: {_reason(err)}"
        raise VBusConnectionError(msg) from err
    except BaseException:
        await _close(writer)
        raise


async def connect(
    config: ConnectionConfig,
    *,
    list_channels: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> VBusConnection:
    """Connect, authenticate, select the channel and switch to data mode.

    A serial port has no handshake: it is opened and streams at once.
    """
    if config.serial_port:
        return await _open_serial(config, clock)
    if config.raw:
        reader, writer = await _open(config)
        return VBusConnection(reader, writer, channel=config.channel or 0, clock=clock)
    # Every step has its own deadline (reply_timeout), so the handshake as a whole ends within
    # connect_timeout + (number of steps) × reply_timeout.
    async with _handshaking(config) as handshake:
        await _authenticate(handshake)
        channels = await _channel_list(handshake) if list_channels else ()
        if config.channel:
            await handshake.command(Step.CHANNEL, str(config.channel))
        await handshake.command(Step.DATA)
        return VBusConnection(
            handshake.lines.reader,
            handshake.writer,
            channel=config.channel or 0,
            channels=channels,
            initial=handshake.lines.buffer,
            clock=clock,
        )


# -- probe ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeenDevice:
    """A device that sent packets during a probe."""

    address: int
    name: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe learned about a device."""

    channels: tuple[Channel, ...] = ()
    devices: tuple[SeenDevice, ...] = ()
    first_packet: Packet | None = None


async def probe(
    config: ConnectionConfig,
    *,
    list_channels: bool = True,
    wait_for_data: bool = True,
    data_timeout: float = 20.0,
    collect_time: float = 2.0,
    spec: Specification | None = None,
) -> ProbeResult:
    """Check that a device can be used with ``config`` and report what it offers.

    Connects and authenticates; asks for the channel list (DL3) when ``list_channels``; with
    ``wait_for_data`` switches to data mode and waits up to ``data_timeout`` seconds for the
    first valid packet, then keeps listening for ``collect_time`` seconds to see the other
    devices on the bus. Raises :class:`~.errors.NoDataError` when no packet arrives.
    """
    if not wait_for_data:
        async with _handshaking(config) as handshake:
            await _authenticate(handshake)
            channels = await _channel_list(handshake) if list_channels else ()
            if config.channel:
                await handshake.command(Step.CHANNEL, str(config.channel))
            await handshake.quit()
        return ProbeResult(channels=channels)
    connection = await connect(config, list_channels=list_channels)
    try:
        first, sources = await _collect(connection, data_timeout, collect_time)
    finally:
        await connection.close()
    names = spec or _bundled_spec()
    devices = tuple(
        SeenDevice(address, names.device_name(address, destination))
        for address, destination in sources.items()
    )
    return ProbeResult(connection.channels, devices, first)


def _bundled_spec() -> Specification:
    from .specification import Specification  # noqa: PLC0415 - loaded only when needed

    return Specification.bundled()


async def _collect(
    connection: VBusConnection, data_timeout: float, collect_time: float
) -> tuple[Packet, dict[int, int]]:
    """Wait for the first packet, then gather packet sources for ``collect_time`` seconds."""
    sources: dict[int, int] = {}
    first: Packet | None = None
    try:
        async with asyncio.timeout(data_timeout):
            while first is None:
                for frame in await connection.read_frames():
                    if isinstance(frame, Packet):
                        first = first or frame
                        sources.setdefault(frame.source, frame.destination)
    except TimeoutError as err:
        msg = f"Connected, but no VBus data arrived within {data_timeout:g} s"
        raise NoDataError(msg) from err
    with contextlib.suppress(TimeoutError, VBusConnectionError):
        async with asyncio.timeout(collect_time):
            while True:
                for frame in await connection.read_frames():
                    if isinstance(frame, Packet):
                        sources.setdefault(frame.source, frame.destination)
    return first, sources


# -- the self-healing session ---------------------------------------------------------------


class SessionState(StrEnum):
    """Where a :class:`VBusSession` stands."""

    STOPPED = "stopped"
    CONNECTING = "connecting"  # first attempt after start()
    CONNECTED = "connected"  # in data mode (a serial port: once a valid frame arrived)
    DISCONNECTED = "disconnected"  # lost or not reachable; retrying with backoff
    FAILED = "failed"  # the configuration was rejected; not retrying


type FrameListener = Callable[[Frame], None]
type StateListener = Callable[[SessionState, BaseException | None], None]
type Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: 1 s, 2 s, 4 s … 60 s, each ± 20 %."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return min(self.maximum, base * (1 + self.jitter * (2 * rng() - 1)))


class VBusSession:
    """Keeps a VBus connection alive and hands its frames to subscribers.

    ``clock``, ``sleep`` and ``rng`` are injectable so that backoff and watchdog timing can be
    tested without waiting; ``connector`` is :func:`connect` unless a test replaces it.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        backoff: Backoff | None = None,
        watchdog_timeout: float = 60.0,
        healthy_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """Create a session for ``config``; nothing happens before :meth:`start`."""
        self.config = config
        self.backoff = backoff or Backoff()
        self.watchdog_timeout = watchdog_timeout
        self.healthy_after = healthy_after
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._frame_listeners: list[FrameListener] = []
        self._state_listeners: list[StateListener] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: VBusConnection | None = None
        self._totals = ConnectionStats()
        self._last_rx = 0.0
        self._silent = False
        self._send_error: VBusConnectionError | None = None
        self.state = SessionState.STOPPED
        self.last_error: BaseException | None = None
        self.connects = 0
        self.channels: tuple[Channel, ...] = ()

    # -- observers ----------------------------------------------------------------------------

    def subscribe(self, listener: FrameListener) -> Callable[[], None]:
        """Call ``listener`` with every frame received; returns the unsubscribe function."""
        self._frame_listeners.append(listener)
        return lambda: self._frame_listeners.remove(listener)

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(state, reason)`` on every state change; returns the remover."""
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener)

    @property
    def stats(self) -> ConnectionStats:
        """Counters over all connections of this session."""
        current = self._connection.stats if self._connection else ConnectionStats()
        totals = self._totals
        return ConnectionStats(
            totals.bytes + current.bytes,
            totals.frames + current.frames,
            totals.junk_bytes + current.junk_bytes,
            totals.checksum_errors + current.checksum_errors,
            current.last_frame_time or totals.last_frame_time,
        )

    @property
    def reconnects(self) -> int:
        """How often the session connected again after its first connection."""
        return max(0, self.connects - 1)

    def _set_state(self, state: SessionState, reason: BaseException | None = None) -> None:
        if state == self.state and reason is None:
            return
        self.state = state
        self.last_error = reason
        for listener in list(self._state_listeners):
            try:
                listener(state, reason)
            except Exception:
                _LOGGER.exception("Error in a VBus state listener")
        if state in (SessionState.CONNECTED, SessionState.FAILED, SessionState.STOPPED):
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()

    # -- control ------------------------------------------------------------------------------

    def start(self, spawn: Spawn | None = None) -> None:
        """Start connecting in the background.

        ``spawn(coroutine, name)`` creates the task (e.g. a host application's background-task
        helper, so that it tracks the task); by default :func:`asyncio.create_task`.
        """
        if self._task is None or self._task.done():
            self._set_state(SessionState.CONNECTING)
            name = f"vbus session {self.config.target}"
            coroutine = self._run()
            self._task = (
                spawn(coroutine, name) if spawn else asyncio.create_task(coroutine, name=name)
            )

    async def stop(self) -> None:
        """Stop the session and close the connection; returns when everything has ended."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._set_state(SessionState.STOPPED)

    async def wait_connected(self) -> None:
        """Wait until data flows; raise the reason when the session failed or was stopped.

        Wrap it in ``asyncio.timeout()``; on timeout :attr:`last_error` tells why.
        """
        if self.state not in (SessionState.CONNECTED, SessionState.STOPPED, SessionState.FAILED):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        if self.state == SessionState.CONNECTED:
            return
        if self.last_error is not None:
            raise self.last_error
        msg = "The session is stopped"
        raise VBusConnectionError(msg)

    async def send(self, frame: Frame) -> None:
        """Send ``frame`` on the current connection.

        A failed send is a broken connection: it is dropped, reported with the send's error as
        the reason, and the session reconnects.
        """
        connection = self._connection
        if connection is None:
            msg = "Not connected to the device"
            raise VBusConnectionError(msg)
        try:
            await connection.send(frame)
        except VBusConnectionError as err:
            if connection is self._connection and self._send_error is None:
                self._send_error = err
                connection.abort()
            raise

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, pump, reconnect: until stopped or the configuration is rejected.

        It never ends with an exception: every failure other than a configuration rejection
        (an explicit ``-`` reply to PASS, CONNECT or CHANNEL) is retried after the backoff.
        """
        attempt = 0
        while True:
            try:
                connection = await connect(self.config, clock=self._clock)
            except VBusError as err:
                if is_configuration_error(err):
                    _LOGGER.debug("Not retrying: %s", err)
                    self._set_state(SessionState.FAILED, err)
                    return
                self._set_state(SessionState.DISCONNECTED, err)
                await self._sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            except Exception as err:  # noqa: BLE001 - a bug must not end the session for good
                self._set_state(SessionState.DISCONNECTED, self._unexpected(err))
                await self._sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            self.connects += 1
            connected_at = self._clock()
            try:
                reason = await self._pump(connection)
            finally:
                self._connection = None
                self._add_totals(connection.stats)
                await connection.close()
            if self._clock() - connected_at >= self.healthy_after and connection.stats.frames:
                attempt = 0
            self._set_state(SessionState.DISCONNECTED, reason)
            await self._sleep(self.backoff.delay(attempt, self._rng))
            attempt += 1

    def _unexpected(self, err: Exception) -> VBusConnectionError:
        """Log an error that no code path expects (a bug) once, with its traceback."""
        _LOGGER.error(
            "Unexpected error on the connection to %s; reconnecting",
            self.config.target,
            exc_info=err,
        )
        msg = f"Unexpected error: {self.config.redact(_reason(err))}"
        return VBusConnectionError(msg)

    def _add_totals(self, stats: ConnectionStats) -> None:
        totals = self._totals
        totals.bytes += stats.bytes
        totals.frames += stats.frames
        totals.junk_bytes += stats.junk_bytes
        totals.checksum_errors += stats.checksum_errors
        totals.last_frame_time = stats.last_frame_time or totals.last_frame_time

    async def _pump(self, connection: VBusConnection) -> VBusConnectionError:
        """Deliver frames until the connection breaks; return why it broke."""
        self._connection = connection
        self.channels = connection.channels
        self._last_rx = self._clock()
        self._silent = False
        self._send_error = None
        connected = not connection.connected_on_data
        if connected:
            self._set_state(SessionState.CONNECTED)
        watchdog = asyncio.create_task(self._watch(connection), name="vbus watchdog")
        try:
            while True:
                frames = await connection.read_frames()
                if frames:  # junk does not count: a link that sends only junk is dead too
                    self._last_rx = self._clock()
                    if not connected:
                        connected = True
                        self._set_state(SessionState.CONNECTED)
                for frame in frames:
                    self._dispatch(frame)
        except VBusConnectionError as err:
            if self._silent:
                msg = f"No VBus data from the device for {self.watchdog_timeout:g} s"
                return VBusTimeoutError(msg)
            return self._send_error or err
        except Exception as err:  # noqa: BLE001 - a bug must not end the session for good
            return self._unexpected(err)
        finally:
            await cancel_and_wait(watchdog)

    def _dispatch(self, frame: Frame) -> None:
        for listener in list(self._frame_listeners):
            try:
                listener(frame)
            except Exception:
                _LOGGER.exception("Error in a VBus frame listener")

    async def _watch(self, connection: VBusConnection) -> None:
        """Abort the connection when no valid frame arrived for ``watchdog_timeout`` seconds."""
        while True:
            remaining = self._last_rx + self.watchdog_timeout - self._clock()
            if remaining <= 0:
                self._silent = True
                connection.abort()
                return
            await self._sleep(remaining)
