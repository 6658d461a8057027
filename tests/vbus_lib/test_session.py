"""VBus-over-TCP client: handshake paths and errors, data mode, TLS, raw mode, probe, session."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from aiovbus.emulator import Emulator, Personality
from aiovbus.errors import (
    AuthenticationError,
    ChannelNotAvailableError,
    DataModeRejectedError,
    HandshakeError,
    UnknownCommandError,
    VBusConnectionError,
    VBusTimeoutError,
    ViaTagRejectedError,
)
from aiovbus.protocol import Datagram, Packet
from aiovbus.session import (
    Backoff,
    Channel,
    ConnectionConfig,
    SeenDevice,
    SessionState,
    VBusSession,
    connect,
    is_configuration_error,
    probe,
)

from .fakes import FakeTime, ScriptedDevice, free_port
from .faultproxy import GARBLED_LINE

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.usefixtures("socket_enabled")

PACKET = Packet(0x0010, 0x7E11, 0x0100, bytes(100))
MODULE = Packet(0x0010, 0x7E31, 0x0100, bytes(48))
OK = b"+OK\r\n"


def config(device: ScriptedDevice, **kwargs) -> ConnectionConfig:
    return ConnectionConfig(host="127.0.0.1", port=device.port, **kwargs)


async def test_dl2_handshake_with_data_in_the_same_segment() -> None:
    async with ScriptedDevice(data=PACKET.encode() + MODULE.encode()) as device:
        connection = await connect(config(device, password="secret"))
        assert await connection.read_frames() == [PACKET, MODULE]
        assert device.lines == ["PASS secret", "DATA"]
        assert connection.stats.frames == 2
        assert connection.stats.bytes == len(PACKET.encode() + MODULE.encode())
        assert connection.stats.last_frame_time is not None
        await connection.close()


async def test_vbusnet_sends_connect_first_and_dl3_channel() -> None:
    channel_list = b"*1:MX\r\n*3:BS Plus\r\n+OK\r\n"
    replies = {"CONNECT": OK, "PASS": OK, "CHANNEL": OK, "CHANNELLIST": channel_list, "DATA": OK}
    async with ScriptedDevice(replies=replies, data=PACKET.encode()) as device:
        connection = await connect(
            config(device, via_tag="d01234567890", channel=3), list_channels=True
        )
        assert device.lines == [
            "CONNECT d01234567890",
            "PASS vbus",
            "CHANNELLIST",
            "CHANNEL 3",
            "DATA",
        ]
        assert connection.channels == (Channel(1, "MX"), Channel(3, "BS Plus"))
        assert connection.channel == 3
        assert await connection.read_frames() == [
            Packet(0x0010, 0x7E11, 0x0100, bytes(100), channel=3)
        ]
        await connection.close()


@pytest.mark.parametrize(
    ("failing", "kwargs", "error", "step"),
    [
        ("CONNECT", {"via_tag": "nope"}, ViaTagRejectedError, "CONNECT"),
        ("PASS", {}, AuthenticationError, "PASS"),
        ("CHANNEL", {"channel": 7}, ChannelNotAvailableError, "CHANNEL"),
        ("DATA", {}, DataModeRejectedError, "DATA"),
    ],
)
async def test_each_rejection_is_a_typed_error(
    failing: str, kwargs: dict, error: type[HandshakeError], step: str
) -> None:
    replies = {"CONNECT": OK, "PASS": OK, "CHANNEL": OK, "DATA": OK}
    replies[failing] = b"-ERROR: Rejected\r\n"
    async with ScriptedDevice(replies=replies) as device:
        with pytest.raises(error) as excinfo:
            await connect(config(device, **kwargs))
        await device.wait_finished()
        assert excinfo.value.step == step
        assert excinfo.value.reply == "-ERROR: Rejected"
        assert device.lines[-1] == "QUIT"


@pytest.mark.parametrize("step", ["GREETING", "CONNECT", "PASS", "CHANNEL", "DATA"])
async def test_an_unparseable_line_is_no_rejection(step: str) -> None:
    """Finding 15: a line that starts with none of ``+``, ``-`` and ``*`` is skipped.

    Only an explicit ``-`` line rejects a command. A garbled one (here a rejection that lost its
    first byte) used to be taken for one, so a garbled reply to PASS stopped the retries like a
    wrong password; the ``+`` line after it is the answer. (Alone, it ends in the step's
    timeout, retried: ``Failure.LINE`` in ``test_failures.py``.)
    """
    replies = {"CONNECT": OK, "PASS": OK, "CHANNEL": OK, "DATA": OK}
    greeting = b"+HELLO\r\n"
    if step == "GREETING":
        greeting = GARBLED_LINE + greeting
    else:
        replies[step] = GARBLED_LINE + OK
    async with ScriptedDevice(replies=replies, greeting=greeting) as device:
        connection = await connect(config(device, via_tag="tag", channel=1))
        await connection.close()
    assert device.lines == ["CONNECT tag", "PASS vbus", "CHANNEL 1", "DATA"]


async def test_connect_to_a_vbus_lan_is_an_unknown_command() -> None:
    async with ScriptedDevice() as device:
        with pytest.raises(UnknownCommandError) as excinfo:
            await connect(config(device, via_tag="d012"))
        assert str(excinfo.value) == (
            'The device does not support the command (CONNECT): -ERROR: "Error: Unknown command"'
        )


async def test_secrets_never_appear_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    replies = {"CONNECT": OK, "PASS": b"-ERROR: Password s3cr3t-pw rejected for tag-x\r\n"}
    async with ScriptedDevice(replies=replies) as device:
        settings = config(device, password="s3cr3t-pw", via_tag="tag-x")
        with pytest.raises(AuthenticationError) as excinfo:
            await connect(settings)
    assert str(excinfo.value) == (
        "The device rejected the password (PASS): -ERROR: Password *** rejected for ***"
    )
    assert "s3cr3t-pw" not in repr(settings)
    assert "tag-x" not in repr(settings)
    assert "s3cr3t-pw" not in caplog.text
    assert "tag-x" not in caplog.text


async def test_connection_refused() -> None:
    port = free_port()
    with pytest.raises(VBusConnectionError, match=rf"Cannot connect to 127\.0\.0\.1:{port}"):
        await connect(ConnectionConfig(host="127.0.0.1", port=port))


async def test_no_greeting_times_out() -> None:
    async with ScriptedDevice(greeting=b"") as device:
        with pytest.raises(VBusTimeoutError, match=r"did not answer within 0.05 s \(GREETING\)"):
            await connect(config(device, reply_timeout=0.05))


async def test_trickling_reply_times_out_per_step() -> None:
    """A byte every 10 ms keeps each read short, but the greeting never ends: 0.2 s is the limit.

    With a per-read timeout the client would wait for 4096 bytes (about 40 s) and then fail
    with "no line break"; the step deadline makes it a timeout of the step that was waiting.
    """
    async with ScriptedDevice(greeting=b"+", trickle=0.01) as device:
        with pytest.raises(VBusTimeoutError, match=r"did not answer within 0.2 s \(GREETING\)"):
            await connect(config(device, reply_timeout=0.2))


async def test_device_closing_during_handshake() -> None:
    async with ScriptedDevice(replies={"PASS": OK}) as device:
        device.replies["DATA"] = b""  # never answered: the server closes on QUIT only
        device.close_after_data = True
        with pytest.raises(VBusTimeoutError, match=r"\(DATA\)"):
            await connect(config(device, reply_timeout=0.05))


async def test_endless_line_is_rejected() -> None:
    async with ScriptedDevice(greeting=b"+" * 5000) as device:
        with pytest.raises(VBusConnectionError, match="no line break"):
            await connect(config(device))


async def test_raw_mode_has_no_handshake() -> None:
    async with ScriptedDevice(raw=True, data=PACKET.encode()) as device:
        connection = await connect(config(device, raw=True))
        assert await connection.read_frames() == [PACKET]
        assert device.lines == []
        await connection.close()


async def test_send_datagram_and_eof() -> None:
    async with ScriptedDevice() as device:
        connection = await connect(config(device))
        offer_reply = Datagram(0x7E11, 0x0020, 0x0300)
        await connection.send(offer_reply)
        assert await device.wait_for_received(16) == offer_reply.encode()
        connection.abort()
        with pytest.raises(VBusConnectionError):
            await connection.read_frames()


async def test_channellist_unknown_to_device_gives_no_channels() -> None:
    async with ScriptedDevice(data=PACKET.encode()) as device:
        connection = await connect(config(device), list_channels=True)
        assert connection.channels == ()
        await connection.close()


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_tls(tmp_path: Path) -> None:
    cert_file, key_file = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    async with ScriptedDevice(ssl=server_context, data=PACKET.encode()) as device:
        connection = await connect(config(device, tls=trusting))
        assert await connection.read_frames() == [PACKET]
        await connection.close()
        # The default context verifies certificates: a self-signed one is refused.
        with pytest.raises(VBusConnectionError, match=r"TLS with 127\.0\.0\.1"):
            await connect(config(device, tls=True))


async def test_probe_reports_channels_and_devices() -> None:
    replies = {"PASS": OK, "CHANNELLIST": b"*1:DeltaSol MX\r\n+OK\r\n", "CHANNEL": OK, "DATA": OK}
    data = PACKET.encode() + MODULE.encode()
    async with ScriptedDevice(replies=replies, data=data, close_after_data=True) as device:
        result = await probe(config(device, channel=1), collect_time=5)
        assert result.channels == (Channel(1, "DeltaSol MX"),)
        assert result.first_packet == Packet(0x0010, 0x7E11, 0x0100, bytes(100), channel=1)
        assert result.devices == (
            SeenDevice(0x7E11, "DeltaSol MX [Controller]"),
            SeenDevice(0x7E31, "DeltaSol MX [HQM #1]"),
        )
        only_channels = await probe(config(device), wait_for_data=False)
        await device.wait_finished(2)
        assert only_channels.channels == (Channel(1, "DeltaSol MX"),)
        assert device.lines[-2:] == ["CHANNELLIST", "QUIT"]


async def test_probe_without_data_times_out() -> None:
    async with ScriptedDevice() as device:
        with pytest.raises(VBusTimeoutError, match=r"no VBus data arrived within 0\.05 s"):
            await probe(config(device), data_timeout=0.05)


# -- the session ---------------------------------------------------------------------------


def test_backoff_doubles_caps_and_jitters() -> None:
    backoff = Backoff()
    assert [backoff.delay(n, lambda: 0.5) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(0, lambda: 0.0) == pytest.approx(0.8)
    assert backoff.delay(0, lambda: 1.0) == pytest.approx(1.2)
    assert backoff.delay(10, lambda: 1.0) == 60
    assert backoff.delay(10_000, lambda: 0.5) == 60


async def test_unreachable_device_backs_off_exponentially() -> None:
    fake = FakeTime(record_below=1e8)
    session = VBusSession(
        ConnectionConfig(host="127.0.0.1", port=free_port()),
        clock=fake.clock,
        sleep=fake.sleep,
        rng=lambda: 0.5,
    )
    states: list[SessionState] = []
    session.add_state_listener(lambda state, _reason: states.append(state))
    session.start()
    delays = []
    for attempt in range(1, 9):
        delays.append(await fake.next_sleep(attempt))
        fake.advance(delays[-1])
    assert isinstance(session.last_error, VBusConnectionError)
    await session.stop()
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert states[0] == SessionState.CONNECTING
    assert states[1] == SessionState.DISCONNECTED
    assert states[-1] == SessionState.STOPPED
    assert session.last_error is None
    assert session.connects == 0


async def test_session_delivers_frames_and_reconnects() -> None:
    fake = FakeTime(record_below=1e8)
    async with ScriptedDevice(data=PACKET.encode(), close_after_data=True) as device:
        session = VBusSession(
            config(device),
            watchdog_timeout=1e9,
            clock=fake.clock,
            sleep=fake.sleep,
            rng=lambda: 0.5,
        )
        frames: list = []
        arrivals: asyncio.Queue = asyncio.Queue()
        events: list[tuple[SessionState, type | None]] = []
        unsubscribe = session.subscribe(frames.append)
        session.subscribe(arrivals.put_nowait)
        session.add_state_listener(lambda s, r: events.append((s, type(r) if r else None)))
        session.start()
        assert await fake.next_sleep(1) == 1  # connected, got the packet, device closed
        assert frames == [PACKET]
        device.close_after_data = False
        fake.advance(1)
        await arrivals.get()
        await arrivals.get()
        unsubscribe()
        fake.advance(30)  # this connection lasts 30 s: healthy, so the backoff starts over
        device.drop_all()
        assert await fake.next_sleep(2) == 1
        fake.advance(1)
        await arrivals.get()
        device.drop_all()  # not healthy this time: the backoff grows
        assert await fake.next_sleep(3) == 2
        await session.stop()
    assert frames == [PACKET, PACKET]
    assert events[:4] == [
        (SessionState.CONNECTING, None),
        (SessionState.CONNECTED, None),
        (SessionState.DISCONNECTED, VBusConnectionError),
        (SessionState.CONNECTED, None),
    ]
    assert session.connects == 3
    assert session.reconnects == 2
    assert session.stats.frames == 3
    assert session.stats.bytes == 3 * len(PACKET.encode())
    assert session.state == SessionState.STOPPED


REJECTIONS = {
    "rejected": b"-ERROR: Rejected\r\n",
    "unknown": b'-ERROR: "Error: Unknown command"\r\n',
}


@pytest.mark.parametrize("reply", REJECTIONS.values(), ids=REJECTIONS)
@pytest.mark.parametrize(
    ("step", "stops"),
    [("GREETING", False), ("CONNECT", True), ("PASS", True), ("CHANNEL", True), ("DATA", False)],
)
async def test_only_a_rejected_configuration_stops_the_session(
    step: str, *, stops: bool, reply: bytes
) -> None:
    """A ``-`` reply to PASS, CONNECT or CHANNEL stops it, whatever its text; any other retries.

    "Unknown command" in answer to DATA or as the greeting used to stop it like a wrong password.
    """
    fake = FakeTime()
    replies = {"CONNECT": OK, "PASS": OK, "CHANNEL": OK, "DATA": OK, step: reply}
    greeting = reply if step == "GREETING" else b"+HELLO\r\n"
    async with ScriptedDevice(replies=replies, greeting=greeting) as device:
        settings = config(device, via_tag="tag", channel=1)
        session = VBusSession(settings, clock=fake.clock, sleep=fake.sleep, rng=lambda: 0.5)
        session.start()
        if stops:
            with pytest.raises(HandshakeError):
                await session.wait_connected()
            assert session.state == SessionState.FAILED
            assert fake.sleeps == []
            assert device.connections == 1
        else:
            assert await fake.next_sleep(1) == 1
            fake.advance(1)
            assert await fake.next_sleep(2) == 2  # tried again, and backing off
            assert session.state == SessionState.DISCONNECTED
            assert device.connections == 2
        error = session.last_error
        await session.stop()
    assert isinstance(error, HandshakeError)
    assert error.step == step
    assert is_configuration_error(error) is stops
    assert isinstance(error, UnknownCommandError) is (reply == REJECTIONS["unknown"])


async def test_watchdog_treats_a_silent_link_as_dead() -> None:
    fake = FakeTime()
    async with ScriptedDevice() as device:  # DATA accepted, then nothing is ever sent
        session = VBusSession(
            config(device), watchdog_timeout=60, clock=fake.clock, sleep=fake.sleep
        )
        session.start()
        await session.wait_connected()
        assert await fake.next_sleep(1) == 60  # the watchdog waits for the deadline
        fake.advance(60)
        await device.closed.wait()
        backoff = await fake.next_sleep(2)
        assert 0.8 <= backoff <= 1.2
        assert session.state == SessionState.DISCONNECTED
        assert isinstance(session.last_error, VBusTimeoutError)
        assert str(session.last_error) == "No VBus data from the device for 60 s"
        await session.stop()


async def test_listener_errors_do_not_stop_the_session(caplog: pytest.LogCaptureFixture) -> None:
    async with ScriptedDevice(data=PACKET.encode()) as device:
        session = VBusSession(config(device))
        received = asyncio.Event()

        def broken(_frame: object) -> None:
            raise RuntimeError("boom")

        session.subscribe(broken)
        session.subscribe(lambda _frame: received.set())
        session.add_state_listener(lambda _s, _r: (_ for _ in ()).throw(RuntimeError("state")))
        session.start()
        await received.wait()
        await session.send(Datagram(0x7E11, 0x0020, 0x0600))
        assert await device.wait_for_received(16) == Datagram(0x7E11, 0x0020, 0x0600).encode()
        await session.stop()
    assert "Error in a VBus frame listener" in caplog.text
    assert "Error in a VBus state listener" in caplog.text


async def test_stop_leaves_no_tasks_and_closes_the_connection() -> None:
    before = asyncio.all_tasks()
    async with ScriptedDevice() as device:
        session = VBusSession(config(device))
        session.start()
        await session.wait_connected()
        await session.stop()
        await device.closed.wait()
        with pytest.raises(VBusConnectionError, match="Not connected"):
            await session.send(Datagram(0x7E11, 0x0020, 0x0600))
        with pytest.raises(VBusConnectionError, match="stopped"):
            await session.wait_connected()
    assert asyncio.all_tasks() == before


# -- against the emulator, every personality ------------------------------------------------

CONFIGS = {
    Personality.DL2: {},
    Personality.KM2: {},
    Personality.LAN: {},
    Personality.DL3: {"channel": 1},
    Personality.VBUSNET: {"via_tag": "mylogger", "channel": 1},
}


@pytest.mark.parametrize("personality", list(CONFIGS))
async def test_every_personality_streams_and_rejects_a_wrong_password(
    personality: Personality,
) -> None:
    async with Emulator(personality=personality, speed=1000, offer_interval=None) as emulator:
        settings = ConnectionConfig(host="127.0.0.1", port=emulator.port, **CONFIGS[personality])
        connection = await connect(settings, list_channels=True)
        frames: list = []
        while not frames:
            frames = [f for f in await connection.read_frames() if isinstance(f, Packet)]
        assert frames[0].source == 0x7E11
        assert frames[0].channel == CONFIGS[personality].get("channel", 0)
        has_channels = personality in (Personality.DL3, Personality.VBUSNET)
        assert connection.channels == ((Channel(1, "DeltaSol MX"),) if has_channels else ())
        await connection.close()
        with pytest.raises(AuthenticationError):
            await connect(replace(settings, password="wrong"))


async def test_personality_specific_rejections() -> None:
    async with Emulator(personality=Personality.LAN) as lan:
        with pytest.raises(UnknownCommandError) as excinfo:
            await connect(ConnectionConfig(host="127.0.0.1", port=lan.port, via_tag="mylogger"))
        assert excinfo.value.step == "CONNECT"
    async with Emulator(personality=Personality.VBUSNET) as vbusnet:
        with pytest.raises(ViaTagRejectedError):
            await connect(ConnectionConfig(host="127.0.0.1", port=vbusnet.port, via_tag="other"))
        with pytest.raises(AuthenticationError):  # PASS before CONNECT
            await connect(ConnectionConfig(host="127.0.0.1", port=vbusnet.port))
    async with Emulator(personality=Personality.DL3) as dl3:
        with pytest.raises(ChannelNotAvailableError):
            await connect(ConnectionConfig(host="127.0.0.1", port=dl3.port, channel=5))
    async with Emulator(personality=Personality.RAW, speed=1000) as raw:
        connection = await connect(ConnectionConfig(host="127.0.0.1", port=raw.port, raw=True))
        frames: list = []
        while not frames:
            frames = [f for f in await connection.read_frames() if isinstance(f, Packet)]
        await connection.close()
