"""Fuzzing (issue 8, §1): a 10⁶-input mutation run over the receiver, then atheris.

``scripts/fuzz`` runs this in the test virtual environment:

1. **Mutation run**: ``--inputs`` (default 1 000 000) inputs through the stream receiver:
   real VBus streams (the reference recordings, re-encoded) with bytes replaced, bit errors,
   insertions, deletions, repeats and cuts, random bytes, and generated frames between junk,
   each fed whole and cut at random places. Every input goes through
   ``tests/reliability/harness.py``'s ``receiver_target``: the receiver must match an
   independent model of the framing rules and keep its bounds. Pure Python, spread over
   ``--jobs`` processes; prints inputs/s and findings.
2. **Coverage-guided fuzzing with atheris** (optional): installs atheris into the virtual
   environment with pip when it is missing (and skips this part, saying why, when that is not
   possible), then runs libFuzzer for ``--seconds`` per target on the receiver, the VSF parser
   (inputs sealed with a valid length and CRC, so that the parser gets past them) and the
   recording reader, seeded with the reference data. Crash inputs go to a temporary directory,
   whose path is printed.

Exits 1 when anything was found.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = ("receiver", "vsf", "recording")
INTERESTING = (0xAA, 0x10, 0x20, 0x30, 0x7F, 0x80, 0x00, 0x01, 0xFF)


# -- the mutation run ---------------------------------------------------------------------------


def _corpus() -> bytes:
    """Wire bytes of the reference recordings' frames (or of a few built-in frames)."""
    from tests.reliability.strategies import real_frames  # noqa: PLC0415

    return b"".join(frame.encode() for frame in real_frames())


def _random_frame(rng: random.Random) -> bytes:
    from custom_components.resol_vbus.vbus.protocol import (  # noqa: PLC0415
        Datagram,
        Packet,
        Telegram,
    )

    def address() -> int:
        value = rng.randrange(0x4000)
        return value & 0x7F | value >> 7 << 8

    kind = rng.randrange(3)
    if kind == 0:
        payload = rng.randbytes(4 * rng.randrange(0, 40))
        return Packet(address(), address(), address(), payload).encode()
    if kind == 1:
        param32 = rng.randrange(-(2**31), 2**31)
        return Datagram(address(), address(), address(), rng.randrange(0x10000), param32).encode()
    payload = rng.randbytes(7 * rng.randrange(4))
    return Telegram(address(), address(), rng.randrange(0x20), payload).encode()


def _mutate(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.randrange(1, 6)):
        operation = rng.randrange(7)
        index = rng.randrange(len(data) + 1)
        if operation == 0 and index < len(data):
            data[index] = rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
        elif operation == 1 and index < len(data):
            data[index] ^= 1 << rng.randrange(8)
        elif operation == 2:
            data[index:index] = rng.randbytes(rng.randrange(1, 4))
        elif operation == 3:
            del data[index : index + rng.randrange(1, 24)]
        elif operation == 4:
            data[index:index] = data[index : index + rng.randrange(1, 64)]
        elif operation == 5:
            data[index:index] = _random_frame(rng)
        else:
            del data[index:]


def generate(rng: random.Random, corpus: bytes) -> tuple[bytes, list[int]]:
    """One input and its cut positions."""
    kind = rng.randrange(8)
    if kind == 0:
        data = bytearray(rng.randbytes(rng.randrange(600)))
    elif kind == 1:
        pieces = [_random_frame(rng) for _ in range(rng.randrange(1, 6))]
        data = bytearray(b"".join(piece + rng.randbytes(rng.randrange(8)) for piece in pieces))
        _mutate(rng, data)
    else:
        start = rng.randrange(len(corpus))
        data = bytearray(corpus[start : start + rng.randrange(1, 900)])
        _mutate(rng, data)
    cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(5))]
    return bytes(data), cuts


def _work(job: tuple[int, int]) -> tuple[int, int, list[str]]:
    """Run ``count`` inputs from ``seed``; return (inputs, frames found, findings)."""
    from tests.reliability.harness import receiver_target  # noqa: PLC0415

    seed, count = job
    rng = random.Random(seed)  # noqa: S311 - reproducible test inputs, not secrets
    corpus = _corpus()
    findings: list[str] = []
    frames = 0
    for _ in range(count):
        data, cuts = generate(rng, corpus)
        try:
            frames += len(receiver_target(data, cuts))
        except Exception:  # noqa: BLE001 - every exception is a finding, reported below
            if len(findings) < 20:
                findings.append(f"input {data.hex()} cuts {cuts}\n{traceback.format_exc()}")
            else:
                findings.append("(more)")
    return count, frames, findings


def mutation_run(inputs: int, jobs: int, seed: int) -> int:
    """The 10⁶-input run; returns the number of findings."""
    chunk = 10_000
    work = [(seed + n, min(chunk, inputs - n * chunk)) for n in range(-(-inputs // chunk))]
    print(f"==> Mutation run: {inputs} inputs over the stream receiver, {jobs} processes")
    started = time.perf_counter()
    done = frames = 0
    findings: list[str] = []
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for count, found, problems in pool.imap_unordered(_work, work):
            done += count
            frames += found
            findings += problems
            if done % 100_000 < chunk:
                rate = done / (time.perf_counter() - started)
                print(f"    {done} inputs, {rate:.0f}/s, {len(findings)} findings", flush=True)
    seconds = time.perf_counter() - started
    for finding in findings[:5]:
        print(finding)
    print(
        f"==> receiver: {done} inputs in {seconds:.0f} s ({done / seconds:.0f} inputs/s with "
        f"{jobs} processes, {done / seconds / jobs:.0f} per process), {frames} frames found, "
        f"{len(findings)} findings"
    )
    return len(findings)


# -- atheris ------------------------------------------------------------------------------------


def ensure_atheris() -> str | None:
    """Make atheris importable (pip install when missing); return why not, or ``None``."""
    try:
        import atheris  # noqa: F401, PLC0415
    except ImportError:
        pass
    else:
        return None
    print("==> Installing atheris into this virtual environment (pip install atheris)")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--progress-bar", "off", "atheris"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"pip could not install atheris for Python {sys.version.split()[0]}: " + (
            lines[-1] if lines else f"exit code {result.returncode}"
        )
    return None


def _seeds(target: str, directory: Path) -> None:
    """Write the target's seed inputs into ``directory``."""
    from tests.vbus_lib.conftest import RECORDINGS, REFERENCE_DATA  # noqa: PLC0415
    from tests.vbus_lib.test_vsf import make_vsf  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    if target == "receiver":
        corpus = _corpus()
        seeds = [corpus[start : start + 2000] for start in range(0, min(len(corpus), 40_000), 2000)]
    elif target == "vsf":
        seeds = [make_vsf()]
        if (REFERENCE_DATA / "test.vsf").is_file():
            seeds.append((REFERENCE_DATA / "test.vsf").read_bytes())
    else:
        for name in RECORDINGS:
            path = REFERENCE_DATA / "recordings" / name
            if path.is_file():
                seeds.append(path.read_bytes()[:4000])
    for number, seed in enumerate(seeds):
        (directory / f"seed-{number}").write_bytes(seed)


def atheris_child(target: str, arguments: list[str]) -> None:
    """Run libFuzzer on ``target`` in this process (it exits when done)."""
    import atheris  # noqa: PLC0415

    with atheris.instrument_imports(include=["custom_components.resol_vbus.vbus"]):
        from tests.reliability import harness  # noqa: PLC0415
        from tests.vbus_lib.test_vsf import seal  # noqa: PLC0415

    def receiver(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        cuts = [
            provider.ConsumeIntInRange(0, 4096) for _ in range(provider.ConsumeIntInRange(0, 4))
        ]
        harness.receiver_target(provider.ConsumeBytes(provider.remaining_bytes()), cuts)

    def vsf(data: bytes) -> None:
        if len(data) >= 16:
            harness.vsf_target(seal(bytearray(data)))

    def recording(data: bytes) -> None:
        harness.recording_target(data)

    function = {"receiver": receiver, "vsf": vsf, "recording": recording}[target]
    atheris.Setup([sys.argv[0], *arguments], function)
    atheris.Fuzz()


def atheris_run(target: str, seconds: int, work: Path) -> int:
    """Fuzz ``target`` for ``seconds`` in a child process; return the number of crashes."""
    corpus, artifacts = work / f"corpus-{target}", work / f"crashes-{target}"
    _seeds(target, corpus)
    artifacts.mkdir(parents=True, exist_ok=True)
    arguments = [
        str(corpus),
        f"-max_total_time={seconds}",
        "-max_len=8192",
        "-rss_limit_mb=2048",
        "-timeout=10",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    print(f"==> atheris: {target} for {seconds} s")
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - this interpreter, this script
        [sys.executable, __file__, "--child", target, "--", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    output = result.stderr.splitlines()
    runs = next(
        (line.split()[-1] for line in output if "stat::number_of_executed_units" in line), "?"
    )
    crashes = sorted(artifacts.iterdir())
    rate = f"{int(runs) / elapsed:.0f} inputs/s" if runs.isdigit() else "rate unknown"
    print(f"    {runs} inputs in {elapsed:.0f} s ({rate}), {len(crashes)} findings")
    if result.returncode and not crashes:
        print("\n".join(output[-20:]))
        return 1
    for crash in crashes:
        print(f"    finding: {crash}")
    return len(crashes)


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="mutation run inputs")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--seed", type=int, default=2026, help="mutation run seed")
    parser.add_argument("--seconds", type=int, default=60, help="atheris time per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help="atheris targets")
    parser.add_argument("--no-atheris", action="store_true", help="only the mutation run")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        atheris_child(args.child, [arg for arg in rest if arg != "--"])
        return 0
    findings = mutation_run(args.inputs, args.jobs, args.seed) if args.inputs else 0
    if not args.no_atheris:
        reason = ensure_atheris()
        if reason is not None:
            print(f"==> atheris skipped: {reason}")
        else:
            work = Path(tempfile.mkdtemp(prefix="vbus-fuzz-"))
            for target in args.targets.split(","):
                findings += atheris_run(target, args.seconds, work)
            if findings:
                print(f"==> crash inputs are kept in {work}")
            else:
                shutil.rmtree(work)
    print(f"==> {findings} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
