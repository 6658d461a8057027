"""Benchmarks of the integration and its VBus library (figures against targets, not tests).

B1 decode throughput: the three DL3 recordings of ``../shared/reference/data/recordings``
re-encoded as one live byte stream and repeated to about 10 MB, fed through the stream receiver
and the decoder, (a) to ``decode --json`` lines and (b) to in-memory value tuples. When Node.js
and npm are available, the JavaScript reference library (npm ``resol-vbus``) decodes the same
stream to the same JSON lines in the same run, and the ratio ours/theirs is printed. Then the
whole process as a user runs it: the installed ``vbus`` console script (``vbus decode --json
--raw``) and the reference's script in its own Node.js process, alternating, best of the runs,
from start to exit with the lines written to a file in memory; and ``vbus --help``'s start-up.

B2 coordinator cost and B4 setup memory run in a Home Assistant test instance:
``bench/test_ha_bench.py``, started here with pytest (see there). B2 replays the recording at
its own pace and at the bus's, and the demo system (``scripts/develop``'s emulator, values and
clock moving every second) for a simulated day: recorder rows per day in total, by entity kind
and of the top 5 entities.

B3 parameter latency: the parameterization engine against the emulator (a DL2 with a synthesized
DeltaSol MX that offers the bus every 2 s): one write, and 5 writes queued together, each time
submitted at a known moment after an offer, with a cold index cache (look-ups included).

B4 specification load: ``Specification.bundled()`` in a fresh interpreter, best of 5.

B5 event-loop stall under hostile input: the library's network paths on an asyncio loop, fed
over loopback by a server thread: device-information bodies of 64 KB (a word run, ``a=``
repeated) and 100 KB, handshake floods of 1 MB of CR, LF and CRLF, a 10 000-line channel list,
and 1 MB of SYNC bytes, zero bytes and valid frames in data mode (also fed straight into the
stream receiver in 64 KB chunks). A ticker task on the same loop keeps the longest gap between
its ticks: the worst stall. Each input has at most 60 s.

Results go to stdout as one table (figure, target, met) and to ``bench/results.json``. Run it as
``scripts/bench`` (``--quick`` for a short run, ``--only B2`` for one benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from aiovbus.cli import iter_packets
from aiovbus.discovery import MAX_RESPONSE, fetch_device_information
from aiovbus.emulator import Emulator, Personality, SyntheticSource
from aiovbus.errors import VBusError
from aiovbus.output import PacketJsonFormatter
from aiovbus.parameters import MemoryIndexCache, ParameterEngine
from aiovbus.protocol import CMD_OFFER, Datagram, Frame, Packet
from aiovbus.receiver import StreamReceiver
from aiovbus.recording import HeaderSetStart, RecordedFrame, read_recording
from aiovbus.session import ConnectionConfig, VBusSession, connect
from aiovbus.specification import Specification

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT.parent / "shared" / "reference" / "data" / "recordings"
REFERENCE_PACKAGE = "resol-vbus@0.29.0"
CHUNK = 65536


def live_stream(target_bytes: int) -> bytes:
    """The recordings' packets re-encoded as a live stream, repeated to ``target_bytes``."""
    files = sorted(RECORDINGS.glob("2014021[456]_packets.vbus"))
    if len(files) != 3:
        sys.exit(f"bench: the three recordings are needed in {RECORDINGS}")
    one = b"".join(p.encode() for f in files for p in iter_packets(f.read_bytes()))
    return one * max(1, round(target_bytes / len(one)))


def best_of(runs: int, function: Callable[[], int]) -> tuple[float, int]:
    """Fastest wall time of ``runs`` calls and the packet count the call returned."""
    best, count = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        count = function()
        best = min(best, time.perf_counter() - start)
    return best, count


def decode_json(stream: bytes) -> int:
    """Receiver + decoder + JSON line per packet (the ``decode --json`` path)."""
    formatter = PacketJsonFormatter(Specification.bundled())
    receiver = StreamReceiver()
    lines = []
    for offset in range(0, len(stream), CHUNK):
        lines.extend(
            formatter.line(frame)
            for frame in receiver.feed(stream[offset : offset + CHUNK])
            if isinstance(frame, Packet)
        )
    return len(lines)


def decode_values(stream: bytes) -> int:
    """Receiver + decoder to value tuples, no JSON (what the integration does)."""
    spec = Specification.bundled()
    receiver = StreamReceiver()
    count = 0
    for offset in range(0, len(stream), CHUNK):
        for frame in receiver.feed(stream[offset : offset + CHUNK]):
            if isinstance(frame, Packet):
                decoder = spec.decoder_for(frame)
                if decoder is not None:
                    decoder.decode(frame.frame_data)
                count += 1
    return count


def receive_only(stream: bytes) -> int:
    """The stream receiver alone."""
    receiver = StreamReceiver()
    return sum(len(receiver.feed(stream[o : o + CHUNK])) for o in range(0, len(stream), CHUNK))


def console_script() -> Path:
    """The ``vbus`` command of this environment (the lanes install the checkout as aiovbus)."""
    script = Path(sys.executable).parent / "vbus"
    if not script.is_file():
        sys.exit(f"bench: {script} is missing; scripts/setup installs the checkout as aiovbus")
    return script


def startup(runs: int) -> dict[str, Any]:
    """``vbus --help`` as a user starts it: the whole process, best of ``runs``."""
    command = [str(console_script()), "--help"]
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)  # noqa: S603
        best = min(best, time.perf_counter() - start)
    return {"command": "vbus --help", "runs": runs, "seconds": round(best, 4)}


def whole_process(stream_file: Path, reference: list[str] | None, runs: int) -> dict[str, Any]:
    """``vbus decode --json --raw`` and the ``reference`` command, each a whole process.

    The runs alternate (ours, theirs, ours, ...) so that a busy moment of the machine hits
    both; the best of each counts. Each writes its lines to a new file, whose line count must
    be the stream's packet count. The file is in memory (``/dev/shm``) where the machine has
    it: written to a disk, the writeback of 190 MB of lines costs either side a varying share
    of a second, which is the disk's speed, not the decoder's.
    """
    commands = {"ours": [str(console_script()), "decode", "--json", "--raw", str(stream_file)]}
    if reference:
        commands["reference"] = reference
    best: dict[str, float] = {}
    lines: dict[str, int] = {}
    memory = Path("/dev/shm")  # noqa: S108 - a private, unique name below
    folder = memory if memory.is_dir() and os.access(memory, os.W_OK) else stream_file.parent
    output = folder / f"vbus-bench-{os.getpid()}.jsonl"
    try:
        for _ in range(runs):
            for name, command in commands.items():
                output.unlink(missing_ok=True)  # not truncated in the run: freeing takes time
                with output.open("wb") as out:
                    start = time.perf_counter()
                    subprocess.run(command, stdout=out, check=True, timeout=600)  # noqa: S603
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
                with output.open("rb") as text:
                    lines[name] = sum(
                        block.count(b"\n") for block in iter(partial(text.read, CHUNK), b"")
                    )
    finally:
        output.unlink(missing_ok=True)
    return {"seconds": {k: round(v, 4) for k, v in best.items()}, "lines": lines, "runs": runs}


def reference_js(stream: bytes, runs: int, *, use_node: bool) -> dict[str, Any]:
    """B1 in whole processes, and the JavaScript reference in its own process when wanted.

    The reference (``resol-vbus`` from npm, in a temporary folder) decodes the stream to the
    same JSON lines: its in-process figure and its whole-process time. Without Node.js and npm
    (or with ``use_node`` false) only our command runs.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if use_node and (not node or not npm):
        print("bench: Node.js/npm not found, skipping the reference comparison")
    if not use_node or not node or not npm:
        node = npm = None
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vbus-bench-") as tmp:
        stream_file = Path(tmp) / "stream.bin"
        stream_file.write_bytes(stream)
        node_path = Path(tmp) / "node_modules"
        if node and npm:
            install = subprocess.run(  # noqa: S603
                [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", tmp,
                 REFERENCE_PACKAGE],
                capture_output=True, text=True, check=False, timeout=300,
            )  # fmt: skip
            if install.returncode:
                print(f"bench: npm install {REFERENCE_PACKAGE} failed, skipping: {install.stderr}")
                node = npm = None
        if node:
            result = subprocess.run(  # noqa: S603
                [node, str(ROOT / "scripts" / "bench_js" / "decode.js"), str(stream_file)],
                capture_output=True, text=True, check=True, timeout=600,
                env={"NODE_PATH": str(node_path), "BENCH_RUNS": str(runs),
                     "PATH": str(Path(node).parent)},
            )  # fmt: skip
            figures["in_process"] = json.loads(result.stdout)
            figures["node"] = subprocess.run(  # noqa: S603
                [node, "--version"], capture_output=True, text=True, check=True
            ).stdout.strip()
        reference = None
        if node:  # env(1) sets the reference's environment: the script's only output is lines
            script = ROOT / "scripts" / "bench_js" / "decode.js"
            reference = ["env", "-i", f"NODE_PATH={node_path}", "BENCH_OUTPUT=1", node,
                         str(script), str(stream_file)]  # fmt: skip
        figures["whole_process"] = whole_process(stream_file, reference, runs)
    return figures


# -- B2 and B4 memory: Home Assistant -------------------------------------------------------------


def home_assistant_benchmarks(only: list[str], *, quick: bool, profile: bool) -> dict[str, Any]:
    """Run ``bench/test_ha_bench.py`` with pytest (its ``only`` benchmarks); the figures.

    A benchmark that failed has no figures; pytest's output is printed then.
    """
    with tempfile.TemporaryDirectory(prefix="vbus-bench-") as tmp:
        out = Path(tmp) / "ha.json"
        env = {**os.environ, "BENCH_OUT": str(out), "BENCH_QUICK": str(int(quick)),
               "BENCH_PROFILE": str(int(profile))}  # fmt: skip
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "pytest", "bench/test_ha_bench.py", "-p", "no:cacheprovider",
             "-p", "no:logging", "-q", "--no-header", "-k", " or ".join(only)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900,
        )  # fmt: skip
        figures: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    if result.returncode:
        print(f"bench: Home Assistant benchmarks failed:\n{result.stdout}{result.stderr}")
    return figures


# -- B3: parameter latency ------------------------------------------------------------------------

OFFER_INTERVAL = 2.0
MX = 0x7E11


async def _write_trial(
    engine: ParameterEngine, emulator: Emulator, offers: list[float], count: int, phase: float
) -> dict[str, Any]:
    """``count`` writes queued together ``phase`` seconds after a bus offer; their timing."""
    controller = emulator.controller(1)
    await controller.wait_bus_free()
    await controller.wait_for_offers(controller.offers + 1)
    await asyncio.sleep(phase)
    loop = asyncio.get_running_loop()
    engine.cache = MemoryIndexCache()  # cold: every value is looked up by its hash first
    targets = [
        v for v in controller.store.values()
        if v.id_hash and v.minimum is not None and v.maximum is not None
    ][:count]  # fmt: skip
    sessions, offered = engine.bus_sessions, controller.offers
    received, stored = controller.received_total, len(controller.store.writes)
    start = loop.time()
    results = await asyncio.gather(*(
        engine.set(MX, v.maximum if v.value == v.minimum else v.minimum, id_hash=v.id_hash)
        for v in targets
    ))  # fmt: skip
    done = loop.time()
    used = max(t for t in offers if t <= done)
    if len(controller.store.writes) - stored != count or len(results) != count:
        msg = f"B3: {count} writes were queued, the controller stored a different number"
        raise RuntimeError(msg)
    return {
        "writes": count,
        "submitted_after_offer_s": phase,
        "seconds": round(done - start, 3),
        "waited_for_offer_s": round(used - start, 3),
        "session_s": round(done - used, 3),
        "bus_sessions": engine.bus_sessions - sessions,
        "offers": controller.offers - offered,
        "datagrams_to_controller": controller.received_total - received,
    }


async def _parameter_latency(phases: list[float]) -> dict[str, Any]:
    source = SyntheticSource(MX)
    async with Emulator(
        personality=Personality.DL2, channels={1: source}, offer_interval=OFFER_INTERVAL
    ) as emulator:
        session = VBusSession(ConnectionConfig(host="127.0.0.1", port=emulator.port))
        offers: list[float] = []
        loop = asyncio.get_running_loop()

        def note_offer(frame: Frame) -> None:
            if isinstance(frame, Datagram) and frame.command == CMD_OFFER:
                offers.append(loop.time())

        session.subscribe(note_offer)
        session.start()
        await session.wait_connected()
        engine = ParameterEngine(session)  # the default (reference) timing
        try:
            one = [await _write_trial(engine, emulator, offers, 1, p) for p in phases]
            five = [await _write_trial(engine, emulator, offers, 5, p) for p in phases]
        finally:
            await engine.close()
            await session.stop()
    return {"offer_interval_s": OFFER_INTERVAL, "one_write": one, "five_writes": five}


def parameter_latency(trials: int) -> dict[str, Any]:
    """B3: trials submitted evenly over the offer interval (the first just after an offer)."""
    step = (OFFER_INTERVAL - 0.25) / trials
    phases = [round(0.25 + i * step, 2) for i in range(trials)]
    return asyncio.run(_parameter_latency(phases))


# -- B4: specification load -----------------------------------------------------------------------

SPEC_LOAD = """
import json, sys, time
start = time.perf_counter()
from aiovbus.specification import Specification
imported = time.perf_counter()
spec = Specification.bundled()
loaded = time.perf_counter()
for destination, source, command, length in json.loads(sys.argv[1]):
    spec.decoder(destination, source, command).decode(bytes(length))
decoders = time.perf_counter()
print(json.dumps([imported - start, loaded - imported, decoders - loaded]))
"""


def first_header_set() -> list[Packet]:
    """The channel-1 packets of the first header set of 20140214_packets.vbus (the MX system)."""
    packets: list[Packet] = []
    for item in read_recording((RECORDINGS / "20140214_packets.vbus").read_bytes()):
        if isinstance(item, HeaderSetStart) and packets:
            break
        if (
            isinstance(item, RecordedFrame)
            and isinstance(item.frame, Packet)
            and item.frame.channel == 1
        ):
            packets.append(item.frame)
    return packets


def spec_load(runs: int) -> dict[str, Any]:
    """Import, load and the MX system's decoders, each the best of ``runs`` fresh processes."""
    spec = Specification.bundled()
    kinds = sorted({
        (p.destination, p.source, p.command, len(p.frame_data))
        for p in first_header_set() if spec.decoder_for(p) is not None
    })  # fmt: skip
    best = [float("inf")] * 3
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", SPEC_LOAD, json.dumps(kinds)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        best = [min(b, t) for b, t in zip(best, json.loads(result.stdout), strict=True)]
    return {
        "import_ms": round(best[0] * 1000, 2),
        "load_ms": round(best[1] * 1000, 2),
        "mx_decoders_ms": round(best[2] * 1000, 2),
        "mx_packet_kinds": len(kinds),
        "runs": runs,
    }


# -- B5: event-loop stall under hostile input -----------------------------------------------------

STALL_TARGET_MS = 50.0  # per 64 KB read (issue 12)
CASE_TIMEOUT = 60.0
MB = 1_000_000
HTTP_HEAD = b"HTTP/1.0 200 OK\r\n\r\n"
GREETING = b"+HELLO\r\n"
CHANNELS = 10_000


def _finish(sock: socket.socket, data: bytes) -> None:
    """Send ``data``, end the stream (FIN) and read until the client closes (so no RST)."""
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(CHUNK):
        pass


def _sends(data: bytes) -> Callable[[socket.socket], None]:
    """A server script: send ``data`` at once, then finish."""
    return lambda sock: _finish(sock, data)


def _http_answer(body: bytes) -> Callable[[socket.socket], None]:
    """A server script: read an HTTP request, answer ``200`` with ``body``."""

    def script(sock: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and (chunk := sock.recv(CHUNK)):
            request += chunk
        _finish(sock, HTTP_HEAD + body)

    return script


def _dl3_answer(listing: bytes) -> Callable[[socket.socket], None]:
    """A server script: a DL3 handshake that answers CHANNELLIST with ``listing``."""

    def script(sock: socket.socket) -> None:
        sock.sendall(GREETING)
        with sock.makefile("rb") as lines:
            for line in lines:
                command = line.split(b" ", 1)[0].strip()
                if command:
                    sock.sendall(listing + b"+OK\r\n" if command == b"CHANNELLIST" else b"+OK\r\n")
                if command == b"DATA":
                    break
        _finish(sock, b"")

    return script


@contextlib.asynccontextmanager
async def _served(script: Callable[[socket.socket], None]) -> AsyncIterator[int]:
    """A loopback TCP port whose first connection ``script`` serves, in a thread.

    A thread, not the measured loop, so that the server's work does not count as a stall (its
    blocking socket calls release the GIL).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(CASE_TIMEOUT)

    def serve() -> None:
        with contextlib.suppress(OSError), listener:
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(CASE_TIMEOUT)
                script(sock)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        await asyncio.to_thread(thread.join, CASE_TIMEOUT)


async def _fetch(script: Callable[[socket.socket], None]) -> str:
    async with _served(script) as port:
        information = await fetch_device_information("127.0.0.1", (port,), CASE_TIMEOUT)
    return "rejected (None)" if information is None else f"parsed, {len(information.raw)} keys"


async def _handshake(script: Callable[[socket.socket], None]) -> str:
    async with _served(script) as port:
        config = ConnectionConfig(host="127.0.0.1", port=port, reply_timeout=5)
        connection = await connect(config, list_channels=True)
        await connection.close()
    return f"connected, {len(connection.channels)} channels"


async def _data_mode(script: Callable[[socket.socket], None]) -> str:
    async with _served(script) as port:
        connection = await connect(ConnectionConfig(host="127.0.0.1", port=port, raw=True))
        frames = 0
        with contextlib.suppress(VBusError):  # until the server closes
            while True:
                frames += len(await connection.read_frames())
        await connection.close()
    return f"{frames} frames"


class _Reads:
    """Bytes handed to the code under test so far: every ``StreamReader.read``, every feed."""

    total = 0

    @classmethod
    @contextlib.contextmanager
    def counted(cls) -> Iterator[None]:
        """Count what every ``asyncio.StreamReader.read`` returns."""
        read = asyncio.StreamReader.read

        async def counting(reader: asyncio.StreamReader, n: int = -1) -> bytes:
            data = await read(reader, n)
            cls.total += len(data)
            return data

        with patch.object(asyncio.StreamReader, "read", counting):
            yield


async def _feed(data: bytes) -> str:
    receiver = StreamReceiver()
    frames = 0
    for offset in range(0, len(data), CHUNK):
        _Reads.total += len(chunk := data[offset : offset + CHUNK])
        frames += len(receiver.feed(chunk))
        await asyncio.sleep(0)  # what a connection does between two reads
    return f"{frames} frames"


async def _stall(work: Awaitable[str]) -> dict[str, Any]:
    """Await ``work`` (at most :data:`CASE_TIMEOUT`) next to a 1 ms ticker.

    The figures: the longest gap between two ticks, and the longest per 64 KB read (a gap in
    which more than 64 KB were read counts per 64 KB: a read of buffered bytes does not yield).
    The outcome is what ``work`` returned or the error it raised.
    """
    loop = asyncio.get_running_loop()
    worst = per_read = 0.0

    async def tick() -> None:
        nonlocal worst, per_read
        last, seen = loop.time(), _Reads.total
        while True:
            await asyncio.sleep(0.001)
            now, read = loop.time(), _Reads.total - seen
            worst = max(worst, now - last)
            per_read = max(per_read, (now - last) * CHUNK / max(read, CHUNK))
            last, seen = now, seen + read

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    start = loop.time()
    try:
        async with asyncio.timeout(CASE_TIMEOUT) as deadline:
            outcome = await work
    except TimeoutError:
        if not deadline.expired():
            raise
        outcome = "timed out"
    except (VBusError, OSError) as err:
        outcome = f"{type(err).__name__}: {err}"
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
    return {"worst_stall_ms": round(worst * 1000, 1),
            "per_64kb_read_ms": round(per_read * 1000, 1),
            "seconds": round(loop.time() - start, 2),
            "outcome": outcome, "timed_out": outcome == "timed out"}  # fmt: skip


def _hostile_inputs() -> list[tuple[str, bytes, Callable[[], Awaitable[str]]]]:
    """(name, bytes, how they are fed) of every B5 input."""
    body = MAX_RESPONSE - len(HTTP_HEAD)  # the largest body accepted
    bodies = {"64 KB word run": b"a" * body, "64 KB of a=": b"a=" * (body // 2),
              "100 KB (over the limit)": b"a" * 100_000}  # fmt: skip
    floods = {"CR": b"\r" * MB, "LF": b"\n" * MB, "CRLF": b"\r\n" * (MB // 2)}
    listing = b"".join(b"*%d:VBus %d\r\n" % (n, n) for n in range(1, CHANNELS + 1))
    streams = {"SYNC": b"\xaa" * MB, "0x00": bytes(MB), "frames": live_stream(MB)}
    return [
        *((f"device information, {name}", data, partial(_fetch, _http_answer(data)))
          for name, data in bodies.items()),
        *((f"handshake, 1 MB of {name}", data, partial(_handshake, _sends(GREETING + data)))
          for name, data in floods.items()),
        (f"handshake, {CHANNELS:,} channel lines", listing,
         partial(_handshake, _dl3_answer(listing))),
        *((f"data mode, 1 MB of {name}", data, partial(_data_mode, _sends(data)))
          for name, data in streams.items()),
        *((f"receiver.feed, 1 MB of {name}", data, partial(_feed, data))
          for name, data in streams.items()),
    ]  # fmt: skip


async def _event_loop_stalls() -> list[dict[str, Any]]:
    return [
        {"input": name, "bytes": len(data), **await _stall(work())}
        for name, data, work in _hostile_inputs()
    ]


def event_loop_stalls() -> dict[str, Any]:
    """B5: every hostile input, one after the other on one loop."""
    with _Reads.counted():
        cases = asyncio.run(_event_loop_stalls())
    return {"target_ms_per_64kb_read": STALL_TARGET_MS, "cases": cases}


# -- the table ------------------------------------------------------------------------------------


class Table:
    """Rows of (benchmark, figure, target, met); ``met`` is None where there is no target."""

    def __init__(self) -> None:
        """Start empty."""
        self.rows: list[dict[str, Any]] = []

    def add(
        self, benchmark: str, figure: str, target: str = "", *, met: bool | None = None
    ) -> None:
        """Add a row."""
        self.rows.append({"benchmark": benchmark, "figure": figure, "target": target, "met": met})

    def print(self) -> None:
        """Print the rows as aligned columns."""
        header = ("benchmark", "figure", "target", "met")
        lines = [
            (r["benchmark"], r["figure"], r["target"], {True: "yes", False: "NO"}.get(r["met"], ""))
            for r in self.rows
        ]
        widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
        for line in [header, *lines]:
            print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))

    @property
    def missed(self) -> list[str]:
        """The benchmarks whose target was missed."""
        return [r["benchmark"] for r in self.rows if r["met"] is False]


def decode_rows(table: Table, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """B1: run, add the rows, fill ``results``."""
    stream = live_stream(int(args.megabytes * 1_000_000))
    rows: list[tuple[str, float, int]] = []
    for name, function in (
        ("B1 receiver only", receive_only),
        ("B1 decode to values (in memory)", decode_values),
        ("B1 decode --json", decode_json),
    ):
        seconds, packets = best_of(args.runs, lambda f=function: f(stream))
        rows.append((name, seconds, packets))
    figures = reference_js(stream, args.runs, use_node=not args.no_js)
    reference = figures.get("in_process")
    if reference:
        rows.append(
            (f"B1 JS reference to JSON ({figures['node']})", reference["seconds"],
             reference["packets"])
        )  # fmt: skip
    results["stream_bytes"] = len(stream)
    results["stream_packets"] = packets = rows[0][2]
    results["benchmarks"] = {}
    for name, seconds, count in rows:
        rate = count / seconds
        table.add(name, f"{rate:,.0f} packets/s, {1e6 / rate:.2f} µs/packet")
        results["benchmarks"][name] = {
            "packets": count,
            "seconds": round(seconds, 4),
            "packets_per_second": round(rate),
            "us_per_packet": round(1e6 / rate, 3),
        }
    if reference:
        ratio = (rows[2][2] / rows[2][1]) / (reference["packets"] / reference["seconds"])
        results["json_ratio_ours_to_reference"] = round(ratio, 2)
        table.add(
            "B1 decode --json speed ours/reference", f"{ratio:.2f}", "≥ 1.0", met=ratio >= 1.0
        )
    else:
        table.add("B1 decode --json speed ours/reference", "skipped (no Node.js/npm)", "≥ 1.0")
    whole = results["b1_whole_process"] = figures["whole_process"]
    megabytes = len(stream) / 1e6
    label = f"B1 whole process, {megabytes:.0f} MB to JSON lines"
    for name, text in (("ours", "vbus decode --json"), ("reference", "JS reference script")):
        if name in whole["seconds"]:
            seconds = whole["seconds"][name]
            correct = whole["lines"][name] == packets
            table.add(
                f"{label}: {text}",
                f"{seconds:.2f} s ({packets / seconds:,.0f} packets/s), "
                f"{whole['lines'][name]:,} lines",
                f"{packets:,} lines",
                met=correct,
            )
    if "reference" in whole["seconds"]:
        ratio = whole["seconds"]["reference"] / whole["seconds"]["ours"]
        results["whole_process_ratio_ours_to_reference"] = round(ratio, 2)
        table.add(f"{label}: speed ours/reference", f"{ratio:.2f}", "≥ 2.0", met=ratio >= 2.0)
    start = results["b1_startup"] = startup(10)
    table.add(
        "B1 vbus --help (start-up, whole process)",
        f"{start['seconds'] * 1000:.0f} ms (best of {start['runs']})",
        "≤ 150 ms",
        met=start["seconds"] <= 0.150,
    )


def coordinator_rows(table: Table, figures: dict[str, Any]) -> None:
    """B2: the rows of both replays."""
    for key, label in (
        ("b2_recording_pace", "B2 recording pace (new values in every set)"),
        ("b2_per_second", "B2 1 packet/s (as on the bus)"),
    ):
        b2 = figures.get(key)
        if b2 is None:
            table.add(label, "failed, see above", met=False)
            continue
        table.add(
            f"{label}: CPU",
            f"{b2['cpu_us_per_packet']:.1f} µs/packet ({b2['packets']} packets)",
            "≤ 100 µs/packet",
            met=b2["cpu_us_per_packet"] <= 100,
        )
        table.add(
            f"{label}: writes",
            f"{b2['state_writes_per_hour']:.0f}/h for {b2['real_value_changes_per_hour']:.0f}"
            f" value changes/h ({b2['replayed_hours']:g} h), {b2['redundant_writes']} redundant",
            "0 redundant",
            met=b2["redundant_writes"] == 0 and b2["state_reported_events"] == 0,
        )


def demo_rows(table: Table, demo: dict[str, Any] | None) -> None:
    """B2 for the demo system: cost, recorder rows per day in total, by kind, top entities."""
    label = "B2 demo system (emulator, 1 cycle/s)"
    if demo is None:
        table.add(label, "failed, see above", met=False)
        return
    hours = demo["simulated_hours"]
    span = f"{hours:g} h" if hours == 24 else f"{hours:g} h, scaled to a day"
    table.add(
        f"{label}: CPU",
        f"{demo['cpu_us_per_packet']:.1f} µs/packet ({demo['packets']:,} packets, {span})",
        "≤ 100 µs/packet",
        met=demo["cpu_us_per_packet"] <= 100,
    )
    table.add(
        f"{label}: recorder rows",
        f"{demo['rows_per_day']:,.0f}/day (state_changed) from {demo['entities_enabled']} "
        f"entities enabled by default; {demo['redundant_writes']} redundant, "
        f"{demo['missed_changes']} missed, {demo['state_reported']} state_reported (no row)",
        "0 redundant",
        met=demo["redundant_writes"] == 0 and demo["missed_changes"] == 0,
    )
    for kind, figures in demo["by_kind"].items():
        table.add(
            f"B2 demo rows: {kind}",
            f"{figures['rows_per_day']:,.0f}/day ({figures['entities']} "
            f"entit{'y' if figures['entities'] == 1 else 'ies'})",
        )
    for number, entity in enumerate(demo["top_entities"], 1):
        table.add(
            f"B2 demo top {number}: {entity['name']}",
            f"{entity['rows_per_day']:,.0f}/day ({entity['kind']})",
        )
    for entity in demo["opt_in"]:
        table.add(
            f"B2 demo, if enabled: {entity['name']}",
            f"{entity['rows_per_day']:,.0f}/day ({entity['kind']}, disabled by default)",
        )
    table.add(
        "B2 demo settings re-read (every 10 min)",
        f"{demo['settings_reread_state_changed']} rows for {demo['settings']} settings "
        f"({demo['settings_reread_state_reported']} state_reported, no row)",
    )
    table.add(
        "B2 demo before: System date as a timestamp",
        f"+{demo['clock_timestamp_rows_per_day_before']:,.0f}/day (a row a second): "
        f"{demo['rows_per_day_before']:,.0f}/day in all",
    )


def latency_rows(table: Table, b3: dict[str, Any]) -> None:
    """B3: the worst of the trials against the targets."""
    interval = b3["offer_interval_s"]
    for key, label, slack in (("one_write", "one write", 1.0), ("five_writes", "5 writes", 1.5)):
        trials = b3[key]
        worst = max(t["seconds"] for t in trials)
        sessions = max(t["bus_sessions"] for t in trials)
        offers = max(t["offers"] for t in trials)
        session = max(t["session_s"] for t in trials)
        table.add(
            f"B3 {label} (offer every {interval:g} s)",
            f"{worst:.2f} s worst of {len(trials)} (bus session {session * 1000:.0f} ms), "
            f"{sessions} session, {offers} offer",
            f"≤ {interval + slack:g} s, 1 session",
            met=worst <= interval + slack and sessions == 1,
        )


def footprint_rows(table: Table, load: dict[str, Any], memory: dict[str, Any] | None) -> None:
    """B4: specification load and memory."""
    table.add(
        "B4 specification load (fresh process)",
        f"{load['load_ms']:.1f} ms (+ {load['mx_decoders_ms']:.1f} ms for the "
        f"{load['mx_packet_kinds']} MX decoders, import {load['import_ms']:.0f} ms)",
        "≤ 50 ms",
        met=load["load_ms"] <= 50,
    )
    if memory is None:
        table.add("B4 memory added", "failed, see above", met=False)
    else:
        table.add(
            "B4 memory added (DeltaSol MX system)",
            f"{memory['added_mb']:.1f} MB (modules {memory['modules_mb']:.1f}, setup "
            f"{memory['setup_mb']:.1f}; {memory['entities']} entities)",
            "≤ 15 MB",
            met=memory["added_mb"] <= 15,
        )


def stall_rows(table: Table, b5: dict[str, Any]) -> None:
    """B5: one row per hostile input."""
    target = b5["target_ms_per_64kb_read"]
    for case in b5["cases"]:
        stall = f"{case['worst_stall_ms']:.1f} ms ({case['per_64kb_read_ms']:.1f} per 64 KB read)"
        table.add(
            f"B5 stall: {case['input']}",
            f"{'timed out' if case['timed_out'] else stall}, {case['bytes']:,} B in "
            f"{case['seconds']:.2f} s, {case['outcome'].split(':')[0]}",
            f"≤ {target:g} ms per 64 KB read",
            met=not case["timed_out"] and case["per_64kb_read_ms"] <= target,
        )


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    try:
        home_assistant = version("homeassistant")
    except PackageNotFoundError:
        home_assistant = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "home_assistant": home_assistant,
    }


BENCHMARKS = ("B1", "B2", "B3", "B4", "B5")


def parse_arguments() -> argparse.Namespace:
    """The command line, with the defaults of a full or a quick run filled in."""
    parser = argparse.ArgumentParser(description="Benchmarks of the RESOL VBus integration")
    parser.add_argument("--megabytes", type=float, help="B1 stream size (default 10, quick 2)")
    parser.add_argument("--runs", type=int, help="B1 best of N runs (default 3, quick 1)")
    parser.add_argument("--no-js", action="store_true", help="skip the JavaScript reference")
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS,
                        metavar="B", help="run only these (B1 B2 B3 B4 B5)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="cProfile the B2 replays")
    args = parser.parse_args()
    args.megabytes = args.megabytes or (2.0 if args.quick else 10.0)
    args.runs = args.runs or (1 if args.quick else 3)
    return args


def home_assistant_rows(table: Table, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """B2 and B4 memory: run the pytest part, add the B2 rows (B4's come with the load time)."""
    print("==> B2 coordinator cost and B4 memory (Home Assistant test instance)")
    only = [name.lower() for name in args.only if name in ("B2", "B4")]
    figures = home_assistant_benchmarks(only, quick=args.quick, profile=args.profile)
    for key in ("b2_recording_pace", "b2_per_second", "b2_demo"):
        if profile := figures.get(key, {}).pop("profile_top", None):
            print(f"--- cProfile of {key}, top functions by own time\n{profile}")
    results.update(figures)
    if "B2" in args.only:
        coordinator_rows(table, figures)
        demo_rows(table, figures.get("b2_demo"))


def main() -> int:
    """Run the benchmarks, print the table, write bench/results.json."""
    args = parse_arguments()
    if not RECORDINGS.is_dir():
        sys.exit(f"bench: the recordings are needed in {RECORDINGS}")
    started = time.perf_counter()
    table = Table()
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "profiled": args.profile}
    if "B1" in args.only:
        print("==> B1 decode throughput")
        decode_rows(table, args, results)
    if "B2" in args.only or "B4" in args.only:
        home_assistant_rows(table, args, results)
    if "B3" in args.only:
        print(f"==> B3 parameter latency (emulator, bus offered every {OFFER_INTERVAL:g} s)")
        results["b3"] = parameter_latency(1 if args.quick else 3)
        latency_rows(table, results["b3"])
    if "B4" in args.only:
        print("==> B4 specification load")
        results["b4_spec_load"] = spec_load(3 if args.quick else 5)
        footprint_rows(table, results["b4_spec_load"], results.get("b4_memory"))
    if "B5" in args.only:
        print("==> B5 event-loop stall under hostile input (loopback)")
        results["b5"] = event_loop_stalls()
        stall_rows(table, results["b5"])

    results["table"] = table.rows
    results["seconds"] = round(time.perf_counter() - started, 1)
    info = results["machine"]
    print(f"\nPython {info['python']}, Home Assistant {info['home_assistant']}, "
          f"{info['cpu']} ({info['cores']} cores, {info['machine']}); "
          f"{results['seconds']:.0f} s{' (quick)' if args.quick else ''}")  # fmt: skip
    table.print()
    out = ROOT / "bench" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    if args.profile:
        print("(B2 ran under cProfile: its figures are slower than without)")
    if table.missed:
        print(f"targets missed: {', '.join(table.missed)} (--profile shows the B2 hot spots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
