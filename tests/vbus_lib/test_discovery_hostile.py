"""Discovery against a hostile network: linear parsing, every fetch failure, bounded tables.

Everything runs on 127.0.0.x, like ``test_discovery.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiovbus import discovery
from aiovbus.discovery import (
    _KEY_VALUE,
    MAX_CONCURRENT_LOOKUPS,
    MAX_RESPONDERS,
    MAX_RESPONSE,
    QUERY,
    REPLY,
    DeviceInformation,
    DiscoveredDevice,
    discover,
    fetch_device_information,
    find_addresses,
)
from aiovbus.errors import VBusConnectionError

from .fakes import LOOPBACK, free_port, http_server, repliers

if TYPE_CHECKING:
    from collections.abc import Sequence

pytestmark = pytest.mark.usefixtures("socket_enabled")

# The specification: the reference's expression, applied globally (leftmost, non-overlapping).
REFERENCE = re.compile(r'(\w+)\s*=\s*"([^"\r\n]*)"')
# Characters on which the expression's parts start, end or backtrack; "ä", "ß" and the Arabic
# digit are word characters, VT, NBSP and LINE SEPARATOR whitespace outside ASCII's CR/LF.
ALPHABET = ("a", "Z", "_", "0", "9", "ä", "ß", "\u0663", " ", "\t", "\x0b", "\xa0", "\u2028",
            "=", '"', "\r", "\n", "-", ".")  # fmt: skip
TOKENS = ("key", "ä1_", " ", "\t", "=", " = ", '"', '"value"', '"x y"', "\r\n", "\n", "\r", "-")
MB = 1_000_000
HEAD = b"HTTP/1.0 200 OK\r\n\r\n"
PARTIAL_HEAD = b"HTTP/1.0 200 OK\r\nContent-Ty"


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(st.sampled_from(ALPHABET), max_size=120),
        st.lists(st.sampled_from(TOKENS + ALPHABET), max_size=40).map("".join),
    )
)
def test_parser_finds_what_the_reference_expression_finds(text: str) -> None:
    assert _KEY_VALUE.findall(text) == REFERENCE.findall(text)
    assert DeviceInformation.parse(text).raw == dict(REFERENCE.findall(text))


@pytest.mark.timeout(20)  # linear: well under a second; the reference's expression: hours
@pytest.mark.parametrize(
    ("body", "raw"),
    [
        pytest.param("a" * MB, {}, id="word run"),
        pytest.param("a=" * (MB // 2), {}, id="a= repeated"),
        pytest.param('a="' * (MB // 3), {"a": "a="}, id="a=quote repeated"),
        pytest.param('a="' + "x" * MB, {}, id="value never closed"),
        pytest.param("a " * (MB // 2), {}, id="a space repeated"),
        pytest.param("=" * MB, {}, id="equals signs"),
        pytest.param('"' * MB, {}, id="quotes"),
        pytest.param(
            ("ä" * 1000 + ' =\t"' + "v" * 1000 + "\r") * 500 + 'serial="1"',
            {"serial": "1"},
            id="mixed",
        ),
    ],
)
def test_adversarial_bodies_parse_in_linear_time(body: str, raw: dict[str, str]) -> None:
    assert DeviceInformation.parse(body).raw == raw


# -- HTTP device information: every failure is a plain None ------------------------------------


@pytest.mark.timeout(20)  # a fetch that waits for its 60 s timeout hangs instead of failing fast
@pytest.mark.parametrize(
    ("server", "expected"),
    [
        pytest.param(None, None, id="refused"),
        pytest.param({"response": b"", "read_request": False, "reset": True}, None,
                     id="reset after accept"),
        pytest.param({"response": PARTIAL_HEAD, "reset": True}, None, id="reset mid-headers"),
        pytest.param({"response": b""}, None, id="EOF before any byte"),
        pytest.param({"response": PARTIAL_HEAD}, None, id="EOF mid-headers"),
        pytest.param({"response": b"\x00\xff" * 1000}, None, id="binary garbage"),
        pytest.param({"response": b"NOT HTTP\r\n\r\n"}, None, id="not HTTP"),
        pytest.param({"response": b'hello\r\n\r\nproduct = "DL2"'}, None, id="no status line"),
        pytest.param({"response": b'HTTP/1.0 200 OK\r\nproduct = "DL2"'}, None,
                     id="no end of header"),
        pytest.param({"response": b'HTTP/1.0\r\n\r\nproduct = "DL2"'}, None, id="no status"),
        pytest.param({"response": b'HTTP/1.0 302 Found\r\n\r\nproduct = "DL2"\n'}, None,
                     id="status 302"),
        pytest.param({"response": b"HTTP/1.1 404 Not Found\r\n\r\n"}, None, id="status 404"),
        pytest.param({"response": HEAD + b"x" * MAX_RESPONSE}, None, id="over the limit"),
        pytest.param({"response": HEAD + b"x" * MAX_RESPONSE, "endless": True}, None,
                     id="endless flood"),
        pytest.param({"response": HEAD + b"a" * 60000 + b'\nproduct = "DL2"\n'},
                     DeviceInformation(product="DL2", raw={"product": "DL2"}),
                     id="60 KB word run"),
        pytest.param({"response": HEAD + b'a="' * 20000},
                     DeviceInformation(raw={"a": "a="}), id="60 KB of a=quote"),
    ],
)  # fmt: skip
async def test_fetch_from_hostile_servers(
    server: dict[str, Any] | None, expected: DeviceInformation | None
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if server is None:
            port = free_port()  # nothing listens there
        else:
            port = await stack.enter_async_context(http_server(**server))
        assert await fetch_device_information(LOOPBACK, (port,), timeout=60) == expected


async def test_fetch_from_a_server_that_never_answers_gives_none() -> None:
    async with http_server(None) as port:
        assert await fetch_device_information(LOOPBACK, (port,), timeout=0.2) is None


# -- UDP replies: bounded and correct ------------------------------------------------------------


def logged_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_flood_of_replies_from_one_device_finds_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port(kind=socket.SOCK_DGRAM)
    flood = (REPLY, REPLY[:-1], b"", REPLY + b"\x00" * 1000) * 200
    async with repliers(1, port, flood, wrong_port=(REPLY,) * 200):
        addresses = await find_addresses(0.3, broadcast=LOOPBACK, port=port, interval=0.05)
    assert addresses == [LOOPBACK]
    assert logged_warnings(caplog) == []


async def test_short_and_wrong_port_replies_find_nothing() -> None:
    port = free_port(kind=socket.SOCK_DGRAM)
    async with repliers(3, port, (REPLY[:-1], b"", QUERY[:5]), wrong_port=(REPLY,) * 50):
        assert await find_addresses(0.2, broadcast=LOOPBACK, port=port, tries=1) == []


async def test_discover_keeps_the_first_responders_and_limits_concurrent_lookups(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = peak = 0

    async def look_up(
        address: str, ports: Sequence[int], seconds: float
    ) -> DeviceInformation | None:
        nonlocal running, peak
        assert (tuple(ports), seconds) == ((80,), 0.5)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)  # let the other look-ups start, if they may
        running -= 1
        return DeviceInformation(name=address) if address.endswith("0") else None

    monkeypatch.setattr(discovery, "fetch_device_information", look_up)
    port = free_port(kind=socket.SOCK_DGRAM)
    count = MAX_RESPONDERS + 6
    # Two queries, each answered by all: one warning all the same.
    async with repliers(count, port, (REPLY,)):
        devices = await discover(
            0.3, broadcast=LOOPBACK, port=port, tries=2, interval=0.05, http_ports=(80,),
            http_timeout=0.5,
        )  # fmt: skip
    hosts = [f"127.0.0.{n}" for n in range(1, MAX_RESPONDERS + 1)]
    assert devices == [
        DiscoveredDevice(address=host, name=host) if host.endswith("0")
        else DiscoveredDevice(address=host)
        for host in hosts
    ]  # fmt: skip
    assert peak == MAX_CONCURRENT_LOOKUPS
    warning = "More than 64 addresses answered the discovery query; ignoring the others"
    assert logged_warnings(caplog) == [f"{warning} (forged replies?)"]


async def test_discover_without_a_udp_socket_raises_a_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_network(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(asyncio.get_running_loop(), "create_datagram_endpoint", no_network)
    with pytest.raises(
        VBusConnectionError,
        match=r"^Cannot open a UDP socket for the discovery: Network is unreachable$",
    ) as caught:
        await discover(0.1, broadcast=LOOPBACK, http_ports=())
    assert isinstance(caught.value.__cause__, OSError)
