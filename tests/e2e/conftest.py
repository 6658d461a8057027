"""Fixtures of the end-to-end tests: the emulator, a real Home Assistant and what drives them.

One emulator, one Home Assistant process and one config entry serve the whole module. The
emulator and every client (Home Assistant's HTTP API, Chromium's DevTools) run on an event loop
in a thread of their own (:class:`Background`), apart from the loops pytest-asyncio and the Home
Assistant test harness manage; the tests are plain functions that hand coroutines to it. So the
tests can also look straight into the emulator's controller.

Nothing here needs Home Assistant's test harness (pytest-homeassistant-custom-component): the
newest lane runs these tests without it, and scripts/e2e keeps pytest from loading
``tests/conftest.py`` (``--confcutdir tests/e2e``). Only pytest-socket is used, to let the tests
reach the processes where the harness blocks sockets.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_socket

from custom_components.resol_vbus.vbus.emulator import (
    Emulator,
    LiveCaptureSource,
    Personality,
    SyntheticSource,
)
from custom_components.resol_vbus.vbus.protocol import Packet, decode_frame

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
# Screenshot and log; scripts/e2e gives the newest lane a folder of its own (E2E_ARTIFACTS).
ARTIFACTS = ROOT / os.environ.get("E2E_ARTIFACTS", "artifacts")
# The synthetic DeltaSol MX system at one fixed moment: its five packets, repeated every second.
SNAPSHOT_TIME = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)


def _load_demo() -> ModuleType:
    """``scripts/demo.py`` (the tools of scripts/develop), imported from its file."""
    spec = importlib.util.spec_from_file_location("resol_vbus_demo", ROOT / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(socket_enabled: None) -> None:
    """No Home Assistant in the test process (overrides the suite-wide fixture, where loaded).

    The tests talk to real processes over loopback sockets, which the harness blocks otherwise.
    """


# The first line of a record of home-assistant.log (the lines up to the next one belong to it),
# such as: 2026-06-21 12:00:00.123 WARNING (MainThread) [homeassistant.helpers.frame] Detected
# (from Home Assistant 2026.11 on, the time has its UTC offset: 12:00:00.123+00:00).
_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)? (?P<level>[A-Z]+) "
    r"\([^)]*\) \[(?P<logger>[^\]]+)\] ",
    re.MULTILINE,
)
_SERIOUS = frozenset({"WARNING", "ERROR", "CRITICAL"})
# Who reports an integration's use of Home Assistant's API: the frame helper (deprecated or
# wrong use; it names the integration) and the core (misuse, such as removing a listener that
# already ran), as tests/conftest.py's _Complaints watches them in the harness lanes.
_REPORTERS = ("homeassistant.helpers.frame", "homeassistant.core")
# How other parts word it: a deprecation (also Python's DeprecationWarning, which Home Assistant
# logs as py.warnings), or the request to report the misuse to the integration's authors.
_WORDING = re.compile(r"deprecat|bug report|report it to the author", re.IGNORECASE)


def complaints(log: str, domain: str = demo.DOMAIN) -> list[str]:
    """What Home Assistant's log holds against the integration ``domain`` (the e2e lanes' rule).

    A record counts when it is a warning or worse, names ``domain``, does not come from the
    integration's own loggers, and comes from the frame helper or the core, or speaks of a
    deprecation or asks for a bug report. Each counted record, first line only. A log that is not
    empty but has no record in the known format raises :class:`ValueError` (a new format must
    not pass unread).
    """
    found = []
    starts = [match.start() for match in _RECORD.finditer(log)]
    if log.strip() and not starts:
        msg = f"no record in the format of home-assistant.log: {log[:200]!r}"
        raise ValueError(msg)
    for begin, end in itertools.pairwise([*starts, len(log)]):
        record = log[begin:end]
        first = _RECORD.match(record)
        assert first is not None
        logger = first["logger"]
        if (
            first["level"] in _SERIOUS
            and domain in record
            and not logger.startswith(f"custom_components.{domain}")
            and (logger in _REPORTERS or _WORDING.search(record))
        ):
            found.append(record.split("\n", 1)[0])
    return found


class Background:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        """Start the loop."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="e2e", daemon=True)
        self.thread.start()

    def run[T](self, coro: Coroutine[Any, Any, T], timeout: float = 360.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    """The loop of the emulator and the clients."""
    # Module fixtures are set up before the first test's socket_enabled fixture.
    pytest_socket.enable_socket()
    loop = Background()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def snapshot() -> tuple[Packet, ...]:
    """The live packets the emulator's channel 1 repeats: a DeltaSol MX system at one moment."""
    units = next(SyntheticSource(start=SNAPSHOT_TIME).cycles()).units
    packets = tuple(frame for unit in units if isinstance(frame := decode_frame(unit), Packet))
    assert len(packets) == len(units) == 5
    return packets


@pytest.fixture(scope="module")
def emulator(background: Background, snapshot: tuple[Packet, ...]) -> Iterator[Emulator]:
    """A DL3 whose channel 1 carries the snapshot every second; its MX offers the bus each 1 s."""
    source = LiveCaptureSource(b"".join(packet.encode() for packet in snapshot), interval=1.0)
    device = Emulator(personality=Personality.DL3, channels={1: source}, offer_interval=1.0)
    background.run(device.start())
    yield device
    background.run(device.stop())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


@dataclass
class RunningHass:
    """A Home Assistant process and a client of its HTTP API, logged in as the demo user."""

    api: Any  # demo.HassClient
    config: Path
    process: subprocess.Popen[bytes]
    complained: int = 0  # how many complaints a test has reported already

    @property
    def log(self) -> str:
        """Its log so far."""
        return (self.config / "home-assistant.log").read_text(errors="replace")

    def complaints(self) -> list[str]:
        """Its complaints so far about the integration (:func:`complaints`); marks them reported."""
        found = complaints(self.log)
        self.complained = len(found)
        return found


@pytest.fixture(scope="module")
def hass(background: Background, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHass]:
    """A real Home Assistant (``scripts/demo.py hass``) in a fresh configuration, onboarded."""
    if missing := [req for req in demo.requirements() if not demo.installed(req)]:
        pytest.fail(f"Home Assistant's runtime needs {missing}: run the tests with scripts/e2e")
    config = tmp_path_factory.mktemp("homeassistant")
    port = _free_port()
    demo.configure(config, port)
    # Python's deprecation warnings are shown (Home Assistant logs them) wherever they arise.
    warnings = ("default::DeprecationWarning", "default::PendingDeprecationWarning")
    python = [sys.executable, *(f"-W{rule}" for rule in warnings)]
    with (config / "console.log").open("wb") as console:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [*python, ROOT / "scripts" / "demo.py", "hass", "-c", config, "--skip-pip"],
            cwd=ROOT,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    session = background.run(_session())
    client = demo.HassClient(session, f"http://127.0.0.1:{port}")
    running = RunningHass(client, config, process)
    try:
        try:
            background.run(client.wait_running(alive=lambda: process.poll() is None))
            background.run(client.onboard_or_login(demo.DEMO_USER, demo.DEMO_PASSWORD))
            background.run(client.wait_running(alive=lambda: process.poll() is None))
            background.run(client.settle_http(config))
        except demo.HomeAssistantError as err:
            console = (config / "console.log").read_text(errors="replace")
            pytest.fail(f"{err}; its output ends with:\n{console[-3000:]}")
        yield running
    finally:
        background.run(session.close())
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if (config / "home-assistant.log").is_file():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(config / "home-assistant.log", ARTIFACTS / "e2e-home-assistant.log")
    # What shutting down (unloading the entry) brought, and what no test has reported.
    reported = running.complained
    if late := running.complaints()[reported:]:
        pytest.fail("Home Assistant complained about the integration:\n" + "\n".join(late))


@pytest.fixture(scope="module")
def entry(background: Background, hass: RunningHass, emulator: Emulator) -> dict[str, Any]:
    """The config flow's result for the emulator's channel 1 (through Home Assistant's API)."""
    result = background.run(hass.api.add_local_device("127.0.0.1", emulator.port, channel=1))
    assert result is not None, "a fresh Home Assistant has the emulator's channel already"
    return result
