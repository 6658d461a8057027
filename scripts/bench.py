"""Benchmarks of the VBus library (not tests: they print figures, they assert nothing).

B1 decode throughput: the three DL3 recordings of ``../shared/reference/data/recordings``
re-encoded as one live byte stream and repeated to about 10 MB, fed through the stream receiver
and the decoder, (a) to ``decode --json`` lines and (b) to in-memory value tuples. When Node.js
and npm are available, the JavaScript reference library (npm ``resol-vbus``) decodes the same
stream to the same JSON lines in the same run, and the ratio ours/theirs is printed.

Results go to stdout as a table and to ``bench/results.json``. Run it as ``scripts/bench``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "custom_components" / "resol_vbus"))

from vbus.cli import iter_packets  # noqa: E402
from vbus.output import PacketJsonFormatter  # noqa: E402
from vbus.protocol import Packet  # noqa: E402
from vbus.receiver import StreamReceiver  # noqa: E402
from vbus.specification import Specification  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

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


def reference_js(stream: bytes, runs: int) -> dict[str, Any] | None:
    """Decode ``stream`` with the JavaScript reference library, or ``None`` without Node.js."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        print("bench: Node.js/npm not found, skipping the reference comparison")
        return None
    with tempfile.TemporaryDirectory(prefix="vbus-bench-") as tmp:
        install = subprocess.run(  # noqa: S603
            [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", tmp,
             REFERENCE_PACKAGE],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        if install.returncode:
            print(f"bench: npm install {REFERENCE_PACKAGE} failed, skipping: {install.stderr}")
            return None
        stream_file = Path(tmp) / "stream.bin"
        stream_file.write_bytes(stream)
        result = subprocess.run(  # noqa: S603
            [node, str(ROOT / "scripts" / "bench_js" / "decode.js"), str(stream_file)],
            capture_output=True, text=True, check=True, timeout=600,
            env={"NODE_PATH": str(Path(tmp) / "node_modules"), "BENCH_RUNS": str(runs),
                 "PATH": str(Path(node).parent)},
        )  # fmt: skip
        version = subprocess.run(  # noqa: S603
            [node, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    figures: dict[str, Any] = json.loads(result.stdout)
    figures["node"] = version
    return figures


def main() -> int:
    """Run the benchmarks, print the table, write bench/results.json."""
    parser = argparse.ArgumentParser(description="VBus library benchmarks")
    parser.add_argument("--megabytes", type=float, default=10.0, help="stream size (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--no-js", action="store_true", help="skip the JavaScript reference")
    args = parser.parse_args()

    start = time.perf_counter()
    Specification.bundled()
    spec_load_ms = (time.perf_counter() - start) * 1000
    stream = live_stream(int(args.megabytes * 1_000_000))
    rows: list[tuple[str, float, int]] = []
    for name, function in (
        ("B1 receiver only", receive_only),
        ("B1 decode to values (in memory)", decode_values),
        ("B1 decode --json", decode_json),
    ):
        seconds, packets = best_of(args.runs, lambda f=function: f(stream))
        rows.append((name, seconds, packets))
    reference = None if args.no_js else reference_js(stream, args.runs)
    if reference:
        rows.append(
            (f"B1 JS reference to JSON ({reference['node']})", reference["seconds"],
             reference["packets"])
        )  # fmt: skip

    print(f"stream: {len(stream) / 1e6:.1f} MB, {rows[0][2]} packets; "
          f"Python {platform.python_version()} on {platform.machine()}; "
          f"bundled specification loaded in {spec_load_ms:.1f} ms")  # fmt: skip
    print(f"{'benchmark':<46} {'packets/s':>12} {'µs/packet':>10}")
    results: dict[str, Any] = {
        "stream_bytes": len(stream),
        "python": platform.python_version(),
        "spec_load_ms": round(spec_load_ms, 2),
        "benchmarks": {},
    }
    for name, seconds, packets in rows:
        rate = packets / seconds
        print(f"{name:<46} {rate:>12,.0f} {1e6 / rate:>10.2f}")
        results["benchmarks"][name] = {
            "packets": packets,
            "seconds": round(seconds, 4),
            "packets_per_second": round(rate),
            "us_per_packet": round(1e6 / rate, 3),
        }
    if reference:
        ratio = (rows[2][2] / rows[2][1]) / (reference["packets"] / reference["seconds"])
        results["json_ratio_ours_to_reference"] = round(ratio, 2)
        print(f"decode --json ratio ours/reference: {ratio:.2f}")
    out = ROOT / "bench" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
