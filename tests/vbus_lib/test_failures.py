"""Every I/O failure at every step is a connection failure, and the session outlives it.

A fault-injecting proxy (:mod:`.faultproxy`) sits between the client and the emulator and
replaces, at one step of one connection, what the device sends with a reset, an end of stream,
silence, garbage, a garbled line or a flood. Whatever the step and the failure: ``connect()``
raises the library's :class:`VBusConnectionError` (never an ``OSError``, never a configuration
error), and a :class:`VBusSession` reports the loss once, reconnects by itself and delivers
frames again.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from unittest.mock import Mock

import pytest

from aiovbus import session as session_module
from aiovbus.emulator import Emulator, Personality, StaticSource
from aiovbus.errors import (
    UnexpectedReplyError,
    VBusConnectionError,
    VBusTimeoutError,
)
from aiovbus.protocol import Datagram, Frame, Packet
from aiovbus.receiver import MAX_BUFFER
from aiovbus.session import (
    Backoff,
    ConnectionConfig,
    SessionState,
    VBusSession,
    connect,
)

from .faultproxy import (
    GARBAGE,
    HANDSHAKE_STEPS,
    TRANSPORT_ERRORS,
    Failure,
    FaultProxy,
    Step,
    client_streams,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACKET = Packet(0x0010, 0x7E11, 0x0100, bytes(range(100)))
RELEASE = Datagram(0x7E11, 0x0020, 0x0600)
#: Short enough that silence costs little, long enough for a loaded machine's good attempts.
REPLY_TIMEOUT = 0.5
WATCHDOG = 0.5
FAILURES = list(Failure)


def expected_error(step: Step, failure: Failure) -> type[VBusConnectionError]:
    """The exact error type ``failure`` at ``step`` must become."""
    if failure in (Failure.RESET, Failure.EOF, *TRANSPORT_ERRORS):
        return VBusConnectionError  # ETIMEDOUT too: the socket's, not a deadline of the client's
    if failure == Failure.GARBAGE and step in HANDSHAKE_STEPS:
        return UnexpectedReplyError  # 4 KiB without a line break
    # Silence, and a garbled line (no rejection: skipped): the step's deadline, or the watchdog.
    return VBusTimeoutError


@asynccontextmanager
async def vbusnet() -> AsyncIterator[tuple[Emulator, FaultProxy, ConnectionConfig]]:
    """VBus.net (every handshake command) behind the proxy: channel 1 sends PACKET once."""
    with client_streams() as clients:
        async with (
            Emulator(
                personality=Personality.VBUSNET,
                channels={1: StaticSource(PACKET)},
                offer_interval=None,
            ) as emulator,
            FaultProxy(emulator.port, clients) as proxy,
        ):
            config = ConnectionConfig(
                host="127.0.0.1",
                port=proxy.port,
                password="vbus",
                via_tag="mylogger",
                channel=1,
                reply_timeout=REPLY_TIMEOUT,
            )
            yield emulator, proxy, config


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("step", HANDSHAKE_STEPS)
async def test_connect_turns_every_failure_into_a_connection_error(
    step: Step, failure: Failure
) -> None:
    async with vbusnet() as (_emulator, proxy, config):
        proxy.arm(step, failure)
        with pytest.raises(VBusConnectionError) as excinfo:
            await connect(config, list_channels=True)
        assert type(excinfo.value) is expected_error(step, failure)
        assert f"({step})" in str(excinfo.value)
        if failure in TRANSPORT_ERRORS:
            cause = excinfo.value.__cause__
            assert isinstance(cause, OSError)
            assert str(excinfo.value) == (
                f"The connection broke during the handshake ({step}): {cause.strerror}"
            )
        assert proxy.injected == 1
        # The next connection passes: nothing was left in a broken state.
        connection = await connect(config, list_channels=True)
        frames: list[Frame] = []
        while not frames:
            frames = await connection.read_frames()
        assert frames == [Packet(0x0010, 0x7E11, 0x0100, PACKET.frame_data, channel=1)]
        await connection.close()


def recovering_session(config: ConnectionConfig, watchdog: float = WATCHDOG) -> VBusSession:
    return VBusSession(
        config,
        backoff=Backoff(initial=0.01, maximum=0.02),
        watchdog_timeout=watchdog,
        healthy_after=1e9,
    )


async def frames_after_loss(session: VBusSession) -> list[Frame]:
    """The first frame the session delivers after it reported a lost connection."""
    arrived: asyncio.Queue[Frame] = asyncio.Queue()
    lost = asyncio.Event()
    session.add_state_listener(lambda state, _r: state == SessionState.DISCONNECTED and lost.set())
    session.subscribe(lambda frame: lost.is_set() and arrived.put_nowait(frame))
    async with asyncio.timeout(20):
        return [await arrived.get()]


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("step", [step for step in Step if step != Step.CHANNELLIST])
async def test_the_session_outlives_every_failure_at_every_step(
    step: Step, failure: Failure
) -> None:
    """The session never sends CHANNELLIST (only the probe does); every other step is here."""
    async with vbusnet() as (_emulator, proxy, config):
        session = recovering_session(config)
        if step == Step.STREAM and failure in TRANSPORT_ERRORS:
            # Only the client knows when it is in data mode: its transport fails at a frame.
            def fail_at_first_frame(_frame: Frame) -> None:
                unsubscribe()
                proxy.fail_all(TRANSPORT_ERRORS[failure]())

            unsubscribe = session.subscribe(fail_at_first_frame)
        else:
            proxy.arm(step, failure)
        states: list[tuple[SessionState, BaseException | None]] = []
        session.add_state_listener(lambda state, reason: states.append((state, reason)))
        frames = asyncio.ensure_future(frames_after_loss(session))
        session.start()
        if step == Step.SEND:
            await session.wait_connected()
            await session.send(RELEASE)  # e.g. a parameter datagram: the device is gone
        assert await frames == [Packet(0x0010, 0x7E11, 0x0100, PACKET.frame_data, channel=1)]
        lost = [reason for state, reason in states if state == SessionState.DISCONNECTED]
        assert len(lost) == 1
        assert type(lost[0]) is expected_error(step, failure)
        if failure in TRANSPORT_ERRORS:
            cause = lost[0].__cause__
            assert isinstance(cause, OSError)
            during = "" if step in (Step.STREAM, Step.SEND) else f" during the handshake ({step})"
            assert str(lost[0]) == f"The connection broke{during}: {cause.strerror}"
        assert session.state == SessionState.CONNECTED
        assert session._task is not None
        assert not session._task.done()
        await session.stop()


SEND_ERRORS = {
    "reset": lambda: ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET)),
    "epipe": TRANSPORT_ERRORS[Failure.PIPE],
    "tls": TRANSPORT_ERRORS[Failure.TLS],
}


@pytest.mark.parametrize("where", ["transport", "write"])
@pytest.mark.parametrize("make_error", SEND_ERRORS.values(), ids=SEND_ERRORS)
async def test_a_failing_send_is_a_connection_error_and_the_session_reconnects(
    make_error: Callable[[], OSError], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sending a datagram fails: ``send()`` raises the library's error, the session reconnects.

    ``transport``: the socket (or TLS) failed, and asyncio reports it as it does: the drain after
    the write raises. ``write``: the stream's write raises at once (as a serial library's may)
    while reads still work: the connection is dropped all the same, and the loss is reported
    with the send's error. No watchdog helps here: it would wait for ever.
    """
    async with vbusnet() as (_emulator, proxy, config):
        session = recovering_session(config, watchdog=1e9)
        lost: list[BaseException | None] = []
        session.add_state_listener(
            lambda state, reason: state == SessionState.DISCONNECTED and lost.append(reason)
        )
        frames = asyncio.ensure_future(frames_after_loss(session))
        session.start()
        await session.wait_connected()
        error = make_error()
        if where == "transport":
            proxy.fail_all(error)
        else:
            for _reader, writer in proxy.client_connections():
                monkeypatch.setattr(writer, "write", Mock(side_effect=error))
        with pytest.raises(VBusConnectionError) as excinfo:
            await session.send(RELEASE)
        assert type(excinfo.value) is VBusConnectionError
        assert excinfo.value.__cause__ is error
        assert str(excinfo.value) == f"The connection broke while sending: {error.strerror}"
        assert await frames == [Packet(0x0010, 0x7E11, 0x0100, PACKET.frame_data, channel=1)]
        assert lost == [excinfo.value]
        assert session.state == SessionState.CONNECTED
        await session.stop()


OPEN_FAILURES = {
    "refused": (
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        "Cannot connect to {}: Connection refused",
    ),
    "host-unreachable": (
        OSError(errno.EHOSTUNREACH, "No route to host"),
        "Cannot connect to {}: No route to host",
    ),
    "network-unreachable": (
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        "Cannot connect to {}: Network is unreachable",
    ),
    "host-down": (OSError(errno.EHOSTDOWN, "Host is down"), "Cannot connect to {}: Host is down"),
    "dns": (
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        "Cannot connect to {}: Name or service not known",
    ),
    "tls": (
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        "TLS with {} failed: [SSL: WRONG_VERSION_NUMBER] wrong version number",
    ),
    "invalid-name": (
        UnicodeError("encoding with 'idna' codec failed"),
        "Cannot connect to {}: invalid host name",
    ),
    "timeout": (TimeoutError(), "Timed out connecting to {}"),
}


@pytest.mark.parametrize(("error", "message"), OPEN_FAILURES.values(), ids=OPEN_FAILURES)
async def test_every_failure_to_open_the_connection_is_retried(
    error: Exception, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with vbusnet() as (_emulator, proxy, config):
        real = asyncio.open_connection
        failures = [error]

        async def open_connection(*args: Any, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop()
            return await real(*args, **kwargs)

        monkeypatch.setattr(session_module.asyncio, "open_connection", open_connection)
        session = recovering_session(config)
        reasons: list[BaseException | None] = []
        session.add_state_listener(
            lambda state, reason: state == SessionState.DISCONNECTED and reasons.append(reason)
        )
        session.start()
        async with asyncio.timeout(20):
            await session.wait_connected()
        assert len(reasons) == 1
        assert type(reasons[0]) is (
            VBusTimeoutError if isinstance(error, TimeoutError) else VBusConnectionError
        )
        assert str(reasons[0]) == message.format(f"127.0.0.1:{proxy.port}")
        await session.stop()


async def test_tls_to_a_plain_device_is_a_connection_error() -> None:
    """A real TLS handshake with a device that speaks plain text (no injected error)."""
    async with vbusnet() as (_emulator, proxy, config):
        context = ssl.create_default_context()
        with pytest.raises(VBusConnectionError) as excinfo:
            await connect(replace(config, tls=context))
        assert str(excinfo.value).startswith(f"TLS with 127.0.0.1:{proxy.port} failed: ")


async def test_a_link_that_sends_only_junk_is_dead() -> None:
    """Bytes are not life: the watchdog counts valid frames."""
    async with vbusnet() as (_emulator, proxy, config):
        proxy.arm(Step.STREAM, Failure.GARBAGE)
        session = recovering_session(config)
        reasons: list[str] = []
        session.add_state_listener(
            lambda state, reason: state == SessionState.DISCONNECTED and reasons.append(str(reason))
        )
        session.start()
        await frames_after_loss(session)
        assert reasons == [f"No VBus data from the device for {WATCHDOG:g} s"]
        # All of it is junk but the last MAX_BUFFER bytes, kept in case a frame starts there.
        assert session.stats.junk_bytes == len(GARBAGE) - MAX_BUFFER
        await session.stop()
