"""The password and the via tag never show (issue 8, §4): logs, output, exception texts.

Everything runs with every logger at DEBUG: handshakes that succeed, passwords and via tags the
device rejects (the rejected ones are secrets too: a typo of the real one), a device that echoes
the password in its error line, a session that reconnects and then finds its password changed,
``probe()``, and the ``monitor`` and ``get-value`` commands. Every log record (message,
arguments, traceback), everything printed and every exception (``str``, ``repr``, traceback,
with its causes) is searched for the secrets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from aiovbus.cli import main
from aiovbus.emulator import Emulator, Personality, StaticSource
from aiovbus.errors import (
    AuthenticationError,
    VBusError,
    ViaTagRejectedError,
)
from aiovbus.protocol import Packet
from aiovbus.session import (
    Backoff,
    Channel,
    ConnectionConfig,
    SessionState,
    VBusSession,
    connect,
    probe,
)
from tests.reliability.evidence import PASSWORD, TYPO, VIA_TAG, WRONG_TAG, Evidence, fold
from tests.vbus_lib.fakes import ScriptedDevice

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACKET = Packet(0x0010, 0x7E11, 0x0100, bytes(100))
OK = b"+OK\r\n"


@pytest.fixture
def evidence(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    found = Evidence()
    yield found
    for when in ("setup", "call"):
        found.records(caplog.get_records(when))
    found.assert_clean()


def vbus_net(**options) -> Emulator:
    return Emulator(
        personality=Personality.VBUSNET,
        password=PASSWORD,
        via_tags=(VIA_TAG,),
        channels={1: StaticSource(PACKET)},
        offer_interval=None,
        **options,
    )


def config(emulator: Emulator, **changes) -> ConnectionConfig:
    options = {"password": PASSWORD, "via_tag": VIA_TAG, "channel": 1} | changes
    return ConnectionConfig(host="127.0.0.1", port=emulator.port, **options)


async def expect_error(evidence: Evidence, error: type[VBusError], call: Callable) -> VBusError:
    with pytest.raises(error) as info:
        await call()
    evidence.exception(info.value)
    return info.value


async def test_handshakes_accepted_and_rejected(evidence: Evidence) -> None:
    async with vbus_net() as emulator:
        connection = await connect(config(emulator), list_channels=True)
        assert await connection.read_frames() == [Packet(0x0010, 0x7E11, 0x0100, bytes(100), 1)]
        await connection.close()
        evidence.texts.append(repr(config(emulator)))
        wrong = await expect_error(
            evidence, AuthenticationError, lambda: connect(config(emulator, password=TYPO))
        )
        assert str(wrong) == (
            'The device rejected the password (PASS): -ERROR: "Error: Password rejected"'
        )
        await expect_error(
            evidence, ViaTagRejectedError, lambda: connect(config(emulator, via_tag=WRONG_TAG))
        )
        await expect_error(
            evidence,
            AuthenticationError,
            lambda: probe(config(emulator, password=TYPO), wait_for_data=False),
        )


async def test_a_device_that_echoes_the_password(evidence: Evidence) -> None:
    """The password sent comes back redacted (one the client never had it cannot know)."""
    replies = {"CONNECT": b"+OK\r\n", "PASS": f"-ERROR: wrong password {TYPO}\r\n".encode()}
    async with ScriptedDevice(replies=replies) as device:
        settings = ConnectionConfig(
            host="127.0.0.1", port=device.port, password=TYPO, via_tag=VIA_TAG
        )
        err = await expect_error(evidence, AuthenticationError, lambda: connect(settings))
        await device.wait_finished()
    assert err.reply == "-ERROR: wrong password ***"
    assert device.lines == [f"CONNECT {VIA_TAG}", f"PASS {TYPO}", "QUIT"]


#: Passwords as users type them: with spaces, with a letter whose case folding is longer, padded.
TYPED = {"spaces": "my pass 7", "sharp-s": "Straße1", "padded": f"  {TYPO}\t"}

#: What a device may do to a secret it echoes.
ALTERATIONS: dict[str, Callable[[str], str]] = {
    "as-is": str,
    "upper": str.upper,  # Straße1: STRASSE1, one letter longer
    "lower": str.lower,
    "swapcase": str.swapcase,
    "casefold": str.casefold,
    "stripped": str.strip,
    "spaces-doubled": lambda text: text.replace(" ", "  "),
    "spaces-removed": lambda text: "".join(text.split()),
    "tabs-for-spaces": lambda text: text.replace(" ", "\t"),
    "nbsp-for-spaces": lambda text: text.replace(" ", "\xa0"),
    "spaced-out": " ".join,
    "padded": lambda text: f" \t{text}  ",
    "upper-unspaced": lambda text: "".join(text.upper().split()),
}


@pytest.mark.parametrize("alter", ALTERATIONS.values(), ids=ALTERATIONS)
@pytest.mark.parametrize("password", TYPED.values(), ids=TYPED)
async def test_a_device_that_echoes_the_secrets_altered(
    evidence: Evidence, password: str, alter: Callable[[str], str]
) -> None:
    """Redaction does not depend on the letter case or the whitespace in or around a secret."""
    echo = f"-ERROR: wrong password {alter(password)}; via {alter(VIA_TAG)}\r\n"
    replies = {"CONNECT": OK, "PASS": echo.encode("latin-1")}
    evidence.secrets.append(password)
    async with ScriptedDevice(replies=replies) as device:
        settings = ConnectionConfig(
            host="127.0.0.1", port=device.port, password=password, via_tag=VIA_TAG
        )
        err = await expect_error(evidence, AuthenticationError, lambda: connect(settings))
        await device.wait_finished()
    assert fold(err.reply) == fold("-ERROR: wrong password ***; via ***")  # and nothing else


async def test_channel_names_are_redacted(evidence: Evidence) -> None:
    """Whoever answers CHANNELLIST may fill the names with the secrets it was sent.

    The names are shown (Home Assistant offers them as choices) and listed (diagnostics).
    """
    listing = (
        f"*1:{PASSWORD.swapcase()}\r\n*2:via {' '.join(VIA_TAG)}!\r\n*3:DeltaSol MX\r\n+OK\r\n"
    )
    replies = {"CONNECT": OK, "PASS": OK, "CHANNELLIST": listing.encode(), "DATA": OK}
    async with ScriptedDevice(replies=replies) as device:
        settings = ConnectionConfig(
            host="127.0.0.1", port=device.port, password=PASSWORD, via_tag=VIA_TAG
        )
        result = await probe(settings, wait_for_data=False)
        connection = await connect(settings, list_channels=True)
        await connection.close()
    expected = (Channel(1, "***"), Channel(2, "via ***!"), Channel(3, "DeltaSol MX"))
    assert result.channels == connection.channels == expected
    evidence.texts += [repr(result), repr(connection.channels)]


@pytest.mark.parametrize("password", ["vbus", "VBus", "VBUS"])
def test_the_factory_default_password_is_no_secret(password: str) -> None:
    """It is printed in every manual: redacting it would garble every "VBus" a device says."""
    config = ConnectionConfig(host="127.0.0.1", password=password, via_tag=VIA_TAG)
    said = f"VBus 1 (VBus/LAN), VBus.net via {VIA_TAG.lower()}"
    assert config.redact(said) == "VBus 1 (VBus/LAN), VBus.net via ***"
    other = ConnectionConfig(host="127.0.0.1", password=f"{password}2")
    assert other.redact(f"{password}2 VBus") == "*** VBus"


class States:
    """A state listener that can be waited on."""

    def __init__(self) -> None:
        self.seen: list[SessionState] = []
        self._changed = asyncio.Event()

    def __call__(self, state: SessionState, _reason: BaseException | None) -> None:
        self.seen.append(state)
        self._changed.set()

    async def reached(self, state: SessionState, count: int = 1) -> None:
        async with asyncio.timeout(5):
            while self.seen.count(state) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_session_reconnects_then_finds_the_password_changed(evidence: Evidence) -> None:
    states = States()
    async with vbus_net() as emulator:
        session = VBusSession(config(emulator), backoff=Backoff(initial=0.01, maximum=0.02))
        session.add_state_listener(states)
        session.start()
        try:
            await states.reached(SessionState.CONNECTED)
            await emulator.reboot()
            await states.reached(SessionState.CONNECTED, 2)
            await emulator.reboot()
            await states.reached(SessionState.CONNECTED, 3)
            emulator.password = "changed-on-the-device"
            await emulator.reboot()
            await states.reached(SessionState.FAILED)
            error = await expect_error(evidence, AuthenticationError, session.wait_connected)
            assert error is session.last_error
            evidence.texts += [repr(session.last_error), str(session.stats), repr(session.config)]
        finally:
            await session.stop()
    assert session.reconnects == 2
    assert states.seen == [
        SessionState.CONNECTING,
        *[SessionState.CONNECTED, SessionState.DISCONNECTED] * 3,
        SessionState.FAILED,
        SessionState.STOPPED,
    ]


async def run_main(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def test_monitor_and_get_value_print_no_secret(
    evidence: Evidence, capsys: pytest.CaptureFixture[str]
) -> None:
    async with vbus_net() as emulator:
        port = str(emulator.port)
        connection = ["--host", "127.0.0.1", "--port", port, "--via-tag", VIA_TAG, "--channel", "1"]
        assert await run_main("monitor", *connection, "--password", PASSWORD, "--count", "1") == 0
        assert await run_main("monitor", *connection, "--password", TYPO, "--json") == 1
        assert (
            await run_main(
                "get-value",
                *connection,
                "--password",
                TYPO,
                "--value-index",
                "1977",
                "--timeout",
                "5",
            )
            == 1
        )
        wrong_tag = ["--host", "127.0.0.1", "--port", port, "--via-tag", WRONG_TAG]
        assert await run_main("monitor", *wrong_tag, "--password", PASSWORD) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "VBus #1: DeltaSol MX [Controller] (01_0010_7E11_10_0100)"
    assert all(line.startswith("    ") for line in lines[1:])
    rejected = 'The device rejected the password (PASS): -ERROR: "Error: Password rejected"'
    assert captured.err.splitlines() == [
        f"vbus monitor: {rejected}",
        f"vbus get-value: {rejected}",
        'vbus monitor: VBus.net rejected the via tag (CONNECT): -ERROR: "Error: Unknown via tag"',
    ]
    evidence.texts += [captured.out, captured.err]
