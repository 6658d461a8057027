"""The library's README (docs/library.md): its example runs as written, against the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aiovbus.emulator import Emulator, Personality, StaticSource
from aiovbus.protocol import Packet

README = Path(__file__).parents[2] / "docs" / "library.md"
pytestmark = pytest.mark.usefixtures("socket_enabled")

EXAMPLE_HOST = 'host="192.168.1.5"'

# A DeltaSol MX's controller packet with one frame (sensors 1 and 2: 21.5 °C, 30.0 °C), a
# packet of a controller the specification does not know (nothing printed), and an MX packet of
# two frames (sensors 1 to 4: -1.0 °C, 0.0 °C, 10.0 °C, 5.5 °C; further fields absent).
PACKETS = (
    Packet(0x0010, 0x7E11, 0x0100, bytes([0xD7, 0x00, 0x2C, 0x01])),
    Packet(0x0010, 0x7777, 0x0100, bytes(4)),
    Packet(0x0010, 0x7E11, 0x0100, bytes([0xF6, 0xFF, 0x00, 0x00, 0x64, 0x00, 0x37, 0x00])),
)


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1, "docs/library.md has one Python example"
    return blocks[0]


async def test_the_example_prints_the_decoded_fields(capsys: pytest.CaptureFixture[str]) -> None:
    source = _example()
    assert EXAMPLE_HOST in source
    assert source.endswith("\nasyncio.run(main())\n")
    async with Emulator(
        personality=Personality.DL3, channels={1: StaticSource(*PACKETS)}, offer_interval=None
    ) as emulator:
        namespace: dict[str, object] = {}
        exec(  # noqa: S102 - the README's own example, with the emulator's address
            source.replace(EXAMPLE_HOST, f'host="127.0.0.1", port={emulator.port}').removesuffix(
                "asyncio.run(main())\n"
            ),
            namespace,
        )
        await namespace["main"]()  # type: ignore[operator]
    assert capsys.readouterr().out == (
        "Temperature sensor 1: 21.5 °C\n"
        "Temperature sensor 2: 30.0 °C\n"
        "Temperature sensor 1: -1.0 °C\n"
        "Temperature sensor 2: 0.0 °C\n"
        "Temperature sensor 3: 10.0 °C\n"
        "Temperature sensor 4: 5.5 °C\n"
    )
