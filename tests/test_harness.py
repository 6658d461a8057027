"""The test harness itself: how tests may use loopback TCP under the PHACC socket guard."""

import asyncio

import pytest

# pytest-homeassistant-custom-component blocks every non-Unix socket in each test's setup
# (pytest-socket), after pytest-socket has looked at its markers, so the enable_socket and
# allow_hosts markers have no effect. Requesting the socket_enabled fixture re-enables sockets;
# connect() stays limited to 127.0.0.1 (not "localhost", which may resolve to ::1).


@pytest.mark.usefixtures("socket_enabled")
async def test_loopback_tcp_roundtrip() -> None:
    async def echo_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()  # and return at once: a handler still waiting here would outlive the test

    server = await asyncio.start_server(echo_line, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"+HELLO\n")

    assert await reader.readline() == b"+HELLO\n"

    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
