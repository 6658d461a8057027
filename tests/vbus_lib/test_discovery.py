"""LAN discovery on loopback: UDP query/replies, HTTP device information, the discover command.

Every query and request goes to 127.0.0.x: tests never send to a real broadcast address.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from aiovbus.cli import main
from aiovbus.discovery import (
    INFORMATION_PATH,
    QUERY,
    REPLY,
    DeviceInformation,
    DeviceInformationServer,
    DiscoveredDevice,
    DiscoveryResponder,
    _http_get,
    _QueryProtocol,
    discover,
    fetch_device_information,
    find_addresses,
)
from aiovbus.emulator import Emulator, Personality

from .fakes import LOOPBACK, free_port, http_server, repliers

pytestmark = pytest.mark.usefixtures("socket_enabled")

DL3_TEXT = (
    'vendor = "RESOL"\nproduct = "DL3"\nserial = "001E660300F0"\nversion = "2.1.0"\n'
    'build = "201311280853"\nname = "DL3-001E660300F0"\nfeatures = "vbus,dl2,dl3"\n'
)
DL3_INFO = DeviceInformation(
    vendor="RESOL",
    product="DL3",
    serial="001E660300F0",
    version="2.1.0",
    build="201311280853",
    name="DL3-001E660300F0",
    features=("vbus", "dl2", "dl3"),
    raw={
        "vendor": "RESOL",
        "product": "DL3",
        "serial": "001E660300F0",
        "version": "2.1.0",
        "build": "201311280853",
        "name": "DL3-001E660300F0",
        "features": "vbus,dl2,dl3",
    },
)


def test_parse_device_information() -> None:
    assert DeviceInformation.parse(DL3_TEXT) == DL3_INFO
    assert DeviceInformation.parse(DL3_INFO.to_text()) == DL3_INFO
    odd = DeviceInformation.parse(
        'product="KM2"\r\nserial   =   "A84041E7A00A"\r\nextra = "x y"\n'
        'broken = "no\nend"\nfeatures = " vbus , ,wifi"\n'
    )
    assert odd == DeviceInformation(
        product="KM2",
        serial="A84041E7A00A",
        features=("vbus", "wifi"),
        raw={
            "product": "KM2",
            "serial": "A84041E7A00A",
            "extra": "x y",
            "features": " vbus , ,wifi",
        },
    )
    assert DeviceInformation().to_text() == ""
    assert DeviceInformation.parse("<html>not it</html>") == DeviceInformation()


def test_discovered_device_from_information_and_json() -> None:
    device = DiscoveredDevice.from_information("192.0.2.7", DL3_INFO)
    assert device.address == "192.0.2.7"
    assert device.serial == "001E660300F0"
    assert device.as_json() == {
        "address": "192.0.2.7",
        "vendor": "RESOL",
        "product": "DL3",
        "serial": "001E660300F0",
        "version": "2.1.0",
        "build": "201311280853",
        "name": "DL3-001E660300F0",
        "features": ["vbus", "dl2", "dl3"],
        "raw": dict(DL3_INFO.raw),
    }
    bare = DiscoveredDevice.from_information("192.0.2.8", None)
    assert bare == DiscoveredDevice(address="192.0.2.8")
    assert bare.as_json()["features"] == []


async def test_discover_finds_the_emulator_once_with_its_information() -> None:
    async with Emulator(personality=Personality.DL3, discovery_port=0, http_port=0) as emulator:
        assert emulator.discovery_port
        assert emulator.http_port
        devices = await discover(
            0.2,
            broadcast=LOOPBACK,
            port=emulator.discovery_port,
            interval=0.05,
            http_ports=(emulator.http_port,),
        )
        responder = emulator._responder
        assert responder is not None
        assert responder.queries == 3  # three tries, three replies, one device
    assert devices == [
        DiscoveredDevice(
            address=LOOPBACK,
            vendor="RESOL",
            product="DL3",
            serial="001E66E7A003",
            version="2.1.0",
            build="201311280853",
            name="DL3-001E66E7A003",
            features=("vbus", "dl2", "dl3"),
            raw={
                "vendor": "RESOL",
                "product": "DL3",
                "serial": "001E66E7A003",
                "version": "2.1.0",
                "build": "201311280853",
                "name": "DL3-001E66E7A003",
                "features": "vbus,dl2,dl3",
            },
        )
    ]


@pytest.mark.parametrize(
    ("personality", "product", "serial"),
    [
        (Personality.DL2, "DL2", "001E66E7A002"),
        (Personality.KM2, "KM2", "A84041E7A00A"),  # KM2s do not use the RESOL OUI
        (Personality.LAN, "VBus/LAN", "001E66E7A00B"),
        (Personality.RAW, "DL2", "001E66000000"),
        (Personality.VBUSNET, "VBus.net", "001E66E7A00C"),
    ],
)
async def test_device_information_per_personality(
    personality: Personality, product: str, serial: str
) -> None:
    async with Emulator(personality=personality, http_port=0) as emulator:
        assert emulator.http_port
        information = await fetch_device_information(LOOPBACK, (emulator.http_port,))
    assert information is not None
    assert (information.vendor, information.product, information.serial) == (
        "RESOL",
        product,
        serial,
    )
    assert information.name == f"{product}-{serial}"
    assert Emulator(serial="001E66ABCDEF").information.serial == "001E66ABCDEF"


async def test_fetch_falls_back_to_the_next_port() -> None:
    async with (
        Emulator(http_port=0) as emulator,
        http_server(b"HTTP/1.0 500 Internal Server Error\r\n\r\noops") as failing,
    ):
        assert emulator.http_port
        ports = (free_port(), failing, emulator.http_port)
        information = await fetch_device_information(LOOPBACK, ports, timeout=2)
        assert information is not None
        assert information.product == "DL2"
        assert await fetch_device_information(LOOPBACK, ports[:2], timeout=2) is None


async def test_fetch_accepts_http_1_1_answers() -> None:
    async with http_server(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n" + DL3_TEXT.encode()) as port:
        assert await fetch_device_information(LOOPBACK, (port,)) == DL3_INFO


async def test_information_server_answers_only_its_path() -> None:
    server = DeviceInformationServer(DL3_INFO)
    await server.start(LOOPBACK, 0)
    try:
        assert await _http_get(LOOPBACK, server.port, "/index.html", 2) is None
        body = await _http_get(LOOPBACK, server.port, INFORMATION_PATH + "?x=1", 2)
        assert body == DL3_TEXT
        for request in (
            f"POST {INFORMATION_PATH} HTTP/1.0\r\n\r\n".encode(),
            b"\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
            writer.write(request)
            async with asyncio.timeout(5):
                assert (await reader.readline()).startswith(b"HTTP/1.0 404 Not Found")
            writer.close()
        # One client never finishes its request, another gives up halfway; a full request
        # made after them is answered (their handlers ran first), and stop() ends the stuck one.
        _reader, stuck = await asyncio.open_connection(LOOPBACK, server.port)
        stuck.write(b"GET / HT")
        _reader, quitter = await asyncio.open_connection(LOOPBACK, server.port)
        quitter.write(b"GET / HT")
        quitter.close()
        assert await _http_get(LOOPBACK, server.port, INFORMATION_PATH, 2) == DL3_TEXT
        assert len(server._handlers) >= 1
    finally:
        await server.stop()
    stuck.close()
    assert server._handlers == set()
    assert server.requests == 5


async def test_bad_replies_are_ignored_and_devices_deduplicated() -> None:
    query_port = free_port(kind=socket.SOCK_DGRAM)
    datagrams = (
        b"---RESOL-BROADCAST-REPL",  # too short
        b"---RESOL-BROADCAST-QUERY---",  # not a reply
        REPLY,
        REPLY + b"and more",  # same device again
    )
    # Two devices (127.0.0.1 and .2), and a reply from the wrong port.
    async with repliers(2, query_port, datagrams, wrong_port=(REPLY,)):
        # No HTTP step: the socket guard only allows connecting to 127.0.0.1.
        devices = await discover(0.2, broadcast=LOOPBACK, port=query_port, tries=1, http_ports=())
    assert devices == [DiscoveredDevice(address=LOOPBACK), DiscoveredDevice(address="127.0.0.2")]


async def test_responder_answers_only_the_exact_query() -> None:
    responder = await DiscoveryResponder.start(LOOPBACK, 0)
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    class Collector(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            received.put_nowait((data, addr))

    client, _ = await loop.create_datagram_endpoint(Collector, local_addr=(LOOPBACK, 0))
    try:
        client.sendto(QUERY + b"x", (LOOPBACK, responder.port))
        client.sendto(QUERY, (LOOPBACK, responder.port))
        async with asyncio.timeout(5):
            assert await received.get() == (REPLY, (LOOPBACK, responder.port))
        assert responder.queries == 1
    finally:
        client.close()
        responder.close()
    DiscoveryResponder().close()  # never started: nothing to close


async def test_find_addresses_stops_sending_at_the_deadline() -> None:
    responder = await DiscoveryResponder.start(LOOPBACK, 0)
    try:
        addresses = await find_addresses(
            0.1, broadcast=LOOPBACK, port=responder.port, tries=5, interval=1.0
        )
    finally:
        responder.close()
    assert addresses == [LOOPBACK]
    assert responder.queries == 1
    assert _QueryProtocol(7053).error_received(OSError("no route")) is None


# -- command line -------------------------------------------------------------------------------


async def test_discover_command_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    async with Emulator(discovery_port=0, http_port=0) as emulator:
        argv = [
            "discover",
            "--timeout",
            "0.15",
            "--broadcast",
            LOOPBACK,
            "--port",
            str(emulator.discovery_port),
            "--http-port",
            str(free_port()),
            "--http-port",
            str(emulator.http_port),
        ]
        assert await asyncio.to_thread(main, argv) == 0
        assert capsys.readouterr().out == (
            "127.0.0.1  DL2  001E66E7A002  DL2-001E66E7A002  2.2.0\n"
        )
        assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "address": LOOPBACK,
            "vendor": "RESOL",
            "product": "DL2",
            "serial": "001E66E7A002",
            "version": "2.2.0",
            "build": "201404290926",
            "name": "DL2-001E66E7A002",
            "features": ["vbus", "dl2"],
            "raw": {
                "vendor": "RESOL",
                "product": "DL2",
                "serial": "001E66E7A002",
                "version": "2.2.0",
                "build": "201404290926",
                "name": "DL2-001E66E7A002",
                "features": "vbus,dl2",
            },
        }
    ]


async def test_discover_command_without_devices(capsys: pytest.CaptureFixture[str]) -> None:
    port = str(free_port(kind=socket.SOCK_DGRAM))
    argv = ["discover", "--timeout", "0.05", "--broadcast", LOOPBACK, "--port", port]
    assert await asyncio.to_thread(main, argv) == 0
    assert capsys.readouterr().out == "no devices found\n"
    assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "no devices found\n")
