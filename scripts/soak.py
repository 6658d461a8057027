"""The long soak: ``scripts/soak [--hours H]`` (see tests/reliability/soak.py).

Replays the reference recordings through the emulator, a VBusSession and a ParameterEngine for
``H`` simulated hours (default 24) and prints the report; exits 1 when an expectation fails
(reconnects other than the drops injected, a write not acknowledged, a changing task count,
memory growth beyond the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.soak import GROWTH_LIMIT, run_soak  # noqa: E402
from tests.vbus_lib.conftest import RECORDINGS, REFERENCE_DATA  # noqa: E402


def main() -> int:
    """Run the soak and print its report."""
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (24)")
    args = parser.parse_args()
    paths = [REFERENCE_DATA / "recordings" / name for name in RECORDINGS]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"scripts/soak: the reference recordings are missing: {', '.join(missing)}")
        return 1
    report = asyncio.run(run_soak(paths, args.hours, progress=print))
    problems = report.problems()
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print(f"OK: memory growth within {GROWTH_LIMIT // 1024} KiB, every expectation met")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
