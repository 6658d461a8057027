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
    ConnectionConfig,
    SessionState,
    VBusSession,
    connect,
    probe,
)
from tests.reliability.evidence import PASSWORD, TYPO, VIA_TAG, WRONG_TAG, Evidence
from tests.vbus_lib.fakes import ScriptedDevice

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACKET = Packet(0x0010, 0x7E11, 0x0100, bytes(100))


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


@pytest.mark.parametrize(
    ("password", "echo"),
    [
        (TYPO, TYPO.upper()),
        (TYPO, TYPO.lower()),
        (TYPO, TYPO.swapcase()),
        (f"  {TYPO}\t", TYPO),  # the device strips what the user's paste added
        (f"  {TYPO}\t", f"  {TYPO.upper()} "),
    ],
)
async def test_a_device_that_echoes_the_password_altered(
    evidence: Evidence, password: str, echo: str
) -> None:
    """Redaction does not depend on the letter case or the whitespace around the secret."""
    replies = {
        "CONNECT": f"+OK: hello {VIA_TAG.upper()}\r\n".encode(),
        "PASS": f"-ERROR: wrong password {echo}; via {VIA_TAG.upper()}\r\n".encode(),
    }
    async with ScriptedDevice(replies=replies) as device:
        settings = ConnectionConfig(
            host="127.0.0.1", port=device.port, password=password, via_tag=VIA_TAG
        )
        err = await expect_error(evidence, AuthenticationError, lambda: connect(settings))
        await device.wait_finished()
    assert err.reply.startswith("-ERROR: wrong password ")
    assert err.reply.endswith("; via ***")
    assert TYPO.casefold() not in err.reply.casefold()


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
