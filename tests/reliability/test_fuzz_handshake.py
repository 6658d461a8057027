"""Property-based fuzzing of the handshake: line reader, reply parser and ``connect()`` (§1).

Whatever a device (or something pretending to be one) answers, and whatever password and via
tag the user typed, the handshake ends in a connection or in a typed
:class:`~aiovbus.errors.VBusError`; it keeps bounded memory; the
secrets appear in no error text; and every command is exactly one line on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aiovbus.errors import (
    AuthenticationError,
    HandshakeError,
    UnknownCommandError,
    VBusConnectionError,
    VBusError,
    ViaTagRejectedError,
)
from aiovbus.session import (
    _STEP_ERRORS,
    MAX_LINE,
    MAX_REPLY,
    READ_SIZE,
    Channel,
    ConnectionConfig,
    SessionState,
    Step,
    VBusConnection,
    VBusSession,
    _Handshake,
    _Lines,
    connect,
)
from tests.vbus_lib.faultproxy import GARBLED_LINE

from .conftest import fuzz

if TYPE_CHECKING:
    from collections.abc import Awaitable

pytestmark = pytest.mark.usefixtures("socket_enabled")

PASSWORD = "Pw-7c1e9f"
VIA_TAG = "via-3b5d2a"

#: Reply lines: the real ones, random ones, and ones that echo the secrets.
reply_lines = st.one_of(
    st.sampled_from(
        [
            b"+HELLO\r\n",
            b"+OK\r\n",
            b"+OK: Password accepted\r\n",
            b'-ERROR: "Error: Unknown command"\r\n',
            b'-ERROR: "Error: Password rejected"\r\n',
            b"*1:DeltaSol MX\r\n",
            b"*9999999999:x\r\n",
            b"\r\n",
            b"\n\r",
        ]
    ),
    st.binary(max_size=60),
    st.tuples(
        st.sampled_from("+-*?"), st.sampled_from([PASSWORD, VIA_TAG]), st.binary(max_size=8)
    ).map(lambda t: f"{t[0]}ERROR {t[1]}".encode() + t[2] + b"\r\n"),
)
replies = st.lists(reply_lines, max_size=6).map(b"".join)


def _reader(*chunks: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


class _Writer:
    """Collects what the handshake writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass


def _assert_secret_free(err: BaseException, secrets: tuple[str, ...] = (PASSWORD, VIA_TAG)) -> None:
    for text in (str(err), repr(err), *map(str, err.args)):
        for secret in secrets:
            assert secret not in text


@given(st.lists(st.binary(max_size=200), max_size=8))
@fuzz(300)
@example([b"x" * (MAX_LINE + 1)])
@example([b"\r" * 5000 + b"+OK"])
async def test_lines_are_stripped_and_bounded(chunks: list[bytes]) -> None:
    lines = _Lines(_reader(*chunks), ConnectionConfig(host="127.0.0.1"))
    seen: list[str] = []
    outcome = await _outcome(_read_all(lines, seen))
    assert isinstance(outcome, VBusConnectionError)
    assert str(outcome) in {
        "The device closed the connection (GREETING)",
        f"The device sent no line break in {MAX_LINE} bytes (GREETING)",
    }
    for line in seen:
        assert line
        assert line == line.strip()
        assert "\r" not in line
        assert "\n" not in line
    assert len("".join(seen)) <= sum(map(len, chunks))


def _deadline() -> float:
    """A step deadline that never ends these in-memory reads (they end by data or EOF)."""
    return asyncio.get_running_loop().time() + 60


async def _read_all(lines: _Lines, seen: list[str]) -> None:
    """Read lines until an error ends it, checking the buffer's bound after each."""
    while True:
        seen.append(await lines.line(Step.GREETING, _deadline()))
        if len(lines.buffer) > MAX_LINE + READ_SIZE:
            msg = f"{len(lines.buffer)} bytes buffered"
            raise AssertionError(msg)


async def _outcome[T](awaitable: Awaitable[T]) -> T | Exception:
    """What ``awaitable`` returns, or the exception it raises."""
    try:
        return await awaitable
    except Exception as err:  # noqa: BLE001 - the caller checks which
        return err


def _decisive_line(data: bytes) -> str | None:
    """The first complete line that starts with ``+`` or ``-``, as the client reads lines.

    That line alone decides a reply: ``+`` accepts, ``-`` rejects; every other line is a ``*``
    payload line or skipped. ``None``: no such line before the end of the stream.
    """
    *complete, _unfinished = re.split(rb"[\r\n]", data)
    for raw in complete:
        line = raw.decode("latin-1").strip()
        if line.startswith(("+", "-")):
            return line
    return None


@given(st.sampled_from(list(Step)), replies)
@fuzz(400)
@example(Step.CHANNELLIST, b"*" + b"9" * 5000 + b":x\r\n+OK\r\n")
@example(Step.PASS, GARBLED_LINE + b"+OK\r\n")  # finding 15: skipped, not a rejection
@example(Step.PASS, GARBLED_LINE)  # finding 15: the end of the stream, not a rejection
async def test_replies_end_in_a_list_or_a_typed_error(step: Step, data: bytes) -> None:
    config = ConnectionConfig(host="127.0.0.1", password=PASSWORD, via_tag=VIA_TAG)
    outcome = await _outcome(_Handshake(_reader(data), _Writer(), config).replies(step))
    decisive = _decisive_line(data)
    if isinstance(outcome, list):
        assert decisive is not None
        assert decisive.startswith("+")
        assert all(line.startswith("*") for line in outcome)
        return
    assert isinstance(outcome, HandshakeError | VBusConnectionError)
    _assert_secret_free(outcome)
    if isinstance(outcome, HandshakeError):
        # Only an explicit "-" line rejects a command (finding 15).
        assert decisive is not None
        assert decisive.startswith("-")
        assert outcome.step == step
        assert outcome.reply == config.redact(decisive)
        expected = _STEP_ERRORS.get(step, HandshakeError)
        if "unknown command" in decisive.lower():
            expected = UnknownCommandError
        assert type(outcome) is expected
    else:
        assert decisive is None


async def test_endless_payload_lines_are_cut_off() -> None:
    """Finding: a device sending ``*`` lines without end grew memory without bound."""
    reader = asyncio.StreamReader()
    handshake = _Handshake(reader, _Writer(), ConnectionConfig(host="127.0.0.1"))
    line = b"*1:" + b"x" * 1000 + b"\r\n"
    reader.feed_data(line * 1000)  # a megabyte of reply lines
    reader.feed_eof()
    with pytest.raises(VBusConnectionError) as info:
        await handshake.replies(Step.CHANNELLIST)
    assert str(info.value) == "The device sent more than 65536 bytes of reply lines (CHANNELLIST)"
    # It stopped reading soon after the limit: at most one read more than MAX_REPLY.
    consumed = len(line) * 1000 - len(await reader.read())
    assert MAX_REPLY < consumed <= MAX_REPLY + READ_SIZE


async def test_a_line_of_control_characters_is_skipped() -> None:
    r"""Finding: control characters only ``str.strip`` removes came back as an empty line.

    (``\x1c``, ``\x85``, ``\xa0``; the reply parser took the empty line for a rejection.)
    """
    lines = _Lines(_reader(b"\x1c\x1d\r\n\x85\xa0\n+OK\r\n"), ConnectionConfig(host="127.0.0.1"))
    assert await lines.line(Step.GREETING, _deadline()) == "+OK"


async def test_a_channel_number_of_5000_digits_is_no_channel() -> None:
    """Finding: ``int()`` of more than 4300 digits raised ``ValueError`` out of ``connect()``."""
    script = [b"+HELLO\r\n+OK\r\n*" + b"7" * 5000 + b":x\r\n*2:Solar\r\n+OK\r\n+OK\r\n"]
    async with LineServer(script) as server:
        config = ConnectionConfig(host="127.0.0.1", port=server.port)
        connection = await connect(config, list_channels=True)
        await connection.close()
        await server.finished()
    assert connection.channels == (Channel(2, "Solar"),)


# -- connect() against a scripted device on loopback -------------------------------------------


@dataclass
class LineServer:
    """Sends its whole ``script`` at once and ends its side; ``lines`` are the client's lines.

    The client reads the replies in order, one per command, as it would from a device that
    answers at once; the end of the script is the end of the connection, so that no example
    waits for a timeout.
    """

    script: list[bytes]
    lines: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"".join(self.script))
            writer.write_eof()
            while line := await reader.readline():
                self.lines.append(line)
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._done.set()

    async def finished(self) -> None:
        """Wait until the client's side of the connection has ended."""
        async with asyncio.timeout(5):
            await self._done.wait()


secrets = st.one_of(
    st.just(PASSWORD),
    st.text(max_size=12),
    st.sampled_from(["pässwört", "密码", "a\r\nDATA", "x\nPASS y", "\x00\x7f", "€"]),
)


@fuzz(80)
@given(
    script=st.lists(replies, min_size=1, max_size=6),
    password=secrets,
    via_tag=st.one_of(st.none(), st.just(VIA_TAG), secrets),
    channel=st.one_of(st.none(), st.integers(min_value=0, max_value=6)),
    listing=st.booleans(),
)
@example(script=[b"+HELLO\r\n"], password="€", via_tag=None, channel=None, listing=False)
@example(script=[b"+HELLO\r\n"], password="x\r\nDATA", via_tag=None, channel=None, listing=False)
@example(
    script=[b"+HELLO\r\n", b"+OK\r\n", b"*" + b"7" * 5000 + b":x\r\n+OK\r\n"],
    password=PASSWORD,
    via_tag=None,
    channel=None,
    listing=True,
)
async def test_connect_ends_in_a_connection_or_a_typed_error(
    script: list[bytes], password: str, via_tag: str | None, channel: int | None, *, listing: bool
) -> None:
    async with LineServer(script) as server:
        config = ConnectionConfig(
            host="127.0.0.1",
            port=server.port,
            password=password,
            via_tag=via_tag,
            channel=channel,
        )
        outcome = await _outcome(connect(config, list_channels=listing))
        if isinstance(outcome, VBusConnection):
            await outcome.close()
            assert _sendable(password)
            assert via_tag is None or _sendable(via_tag)
        else:
            assert isinstance(outcome, VBusError)
            _assert_secret_free(outcome, tuple({password, via_tag} & {PASSWORD, VIA_TAG}))
            assert not isinstance(outcome.__cause__ or outcome.__context__, UnicodeError)
        await server.finished()
    for line in server.lines:
        assert line.endswith(b"\r\n")
        assert line.count(b"\n") == line.count(b"\r") == 1
        word = line.split(b" ", 1)[0].strip()
        assert word in {b"CONNECT", b"PASS", b"CHANNELLIST", b"CHANNEL", b"DATA", b"QUIT"}
        if word == b"PASS":
            assert line == b"PASS " + password.encode("latin-1") + b"\r\n"


@pytest.mark.parametrize(
    ("password", "via_tag", "error", "step"),
    [
        ("pässwört", None, None, None),  # Latin-1 is sent as such
        ("€uro", None, AuthenticationError, Step.PASS),
        ("a\r\nDATA", None, AuthenticationError, Step.PASS),
        ("vbus", "tag\nPASS x", ViaTagRejectedError, Step.CONNECT),
        ("vbus", "日本", ViaTagRejectedError, Step.CONNECT),
    ],
)
async def test_unsendable_secrets_are_a_configuration_error(password, via_tag, error, step) -> None:
    """Finding: a password or via tag outside Latin-1 raised ``UnicodeEncodeError``.

    It came out of ``connect()`` with the secret in its ``repr`` (and killed a session's task
    without a state change); one with a line break sent a second command.
    """
    script = [b"+HELLO\r\n", b"+OK\r\n", b"+OK\r\n", b"+OK\r\n"]
    async with LineServer(script) as server:
        config = ConnectionConfig(
            host="127.0.0.1", port=server.port, password=password, via_tag=via_tag
        )
        if error is None:
            connection = await connect(config)
            await connection.close()
            await server.finished()
            assert server.lines == [b"PASS p\xe4ssw\xf6rt\r\n", b"DATA\r\n"]
            return
        with pytest.raises(error) as info:
            await connect(config)
        await server.finished()
    assert info.value.step == step
    assert info.value.reply == "not sent: it holds a line break or a character outside Latin-1"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    for secret in filter(None, (password, via_tag)):
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
    assert all(b"\n" not in line[:-1] for line in server.lines)
    assert server.lines[-1] == b"QUIT\r\n"


async def test_a_session_with_an_unsendable_password_fails_and_stops() -> None:
    """Finding: the session's task died of ``UnicodeEncodeError``; ``stop()`` raised it again."""
    async with LineServer([b"+HELLO\r\n"]) as server:
        session = VBusSession(ConnectionConfig(host="127.0.0.1", port=server.port, password="€"))
        session.start()
        with pytest.raises(AuthenticationError):
            async with asyncio.timeout(5):  # it used to wait for ever
                await session.wait_connected()
        assert session.state == SessionState.FAILED
        await session.stop()
        await server.finished()
    assert session.state == SessionState.STOPPED
    assert server.lines == [b"QUIT\r\n"]


def _sendable(text: str) -> bool:
    return "\r" not in text and "\n" not in text and all(ord(c) < 256 for c in text)
