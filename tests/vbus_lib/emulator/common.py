"""Shared by the emulator tests: frames, handshake replies and reference exchanges."""

from __future__ import annotations

from aiovbus.protocol import Packet

TIMEOUT = 5.0
SELF = 0x0020
MX = 0x7E11
R1_HASH = 763685401
R1_INDEX = 1977
P1 = Packet(0x0010, MX, 0x0100, bytes(range(0x10, 0x18)))
P2 = Packet(0x0010, 0x7E31, 0x0100, bytes(range(0x80, 0x88)))
OK_PASS = b"+OK: Password accepted\r\n"
OK_DATA = b"+OK: Data incoming...\r\n"
UNKNOWN = b'-ERROR: "Error: Unknown command"\r\n'
NEED_PASS = b'-ERROR: "Error: Password required"\r\n'
REJECTED = b'-ERROR: "Error: Password rejected"\r\n'
NO_CHANNEL = b'-ERROR: "Error: Channel not available"\r\n'


# RESOL's exchange with a DeltaSol MX 2.08 (vbus-parameterization.md §7): (direction, bytes).
SECTION_7 = [
    ("RX", "AA 00 00 11 7E 20 00 05 00 00 00 00 00 00 00 4B"),
    ("TX", "AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D"),
    ("RX", "AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32"),
    ("TX", "AA 11 7E 20 00 20 00 11 00 00 19 6A 04 2D 18 53"),
    ("RX", "AA 20 00 11 7E 20 01 11 39 07 19 6A 04 2D 19 11"),
    ("TX", "AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D"),
    ("RX", "AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32"),
    ("TX", "AA 11 7E 20 00 20 00 02 39 07 02 00 00 00 01 6B"),
    ("RX", "AA 20 00 11 7E 20 00 01 39 07 02 00 00 00 01 6C"),
    ("TX", "AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D"),
    ("RX", "AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32"),
    ("TX", "AA 11 7E 20 00 20 00 03 39 07 00 00 00 00 01 6C"),
    ("RX", "AA 20 00 11 7E 20 00 01 39 07 02 00 00 00 01 6C"),
    ("TX", "AA 11 7E 20 00 20 00 06 00 00 00 00 00 00 00 2A"),
]


VALUE_LIST = {
    "controller": "test-controller",
    "deviceAddress": "0x4212",
    "values": [
        {
            "id": "Handbetrieb1",
            "index": 38,
            "idHash": 1887930473,
            "type": {
                "rootTypeId": "Tristate",
                "defaults": "1",
                "valueTexts": [{"value": v} for v in (0, 1, 2)],
            },
        },
        {
            "id": "TSp1Max",
            "index": 432,
            "type": {"storeFactors": "0,1", "minimums": "4", "maximums": "95", "defaults": "60"},
        },
        {
            "id": "Proxy",
            "index": 10,
            "storage": "abstract",
            "type": {"rootTypeId": "TemperatureProxy"},
        },
        {
            "id": "Proxy_F",
            "index": 12,
            "compoundValueRef": "Proxy",
            "type": {"minimums": "40", "maximums": "204"},
        },
        {
            "id": "Proxy_C",
            "index": 11,
            "compoundValueRef": "Proxy",
            "type": {
                "storeFactors": "0.1",
                "minimums": "4",
                "maximums": "95",
                "defaults": "40",
                "valueTexts": [{"value": "999.9"}],
            },
        },
        {
            "id": "Start",
            "index": 20,
            "type": {"minimums": "00:00", "maximums": "23:30", "defaults": "20:00"},
        },
        {
            "id": "Timer",
            "index": 21,
            "type": {"minimums": "Mo,00:00", "maximums": "So,23:59", "defaults": "So,22:00"},
        },
        {
            "id": "Enum",
            "index": 22,
            "type": {"defaults": "7", "valueTexts": [{"id": "a"}, {"id": "b"}, {"id": "c"}, "x"]},
        },
        {"id": "Blob", "index": 23, "type": {"rootTypeId": "Blob", "size": 4}},
        {"id": "Odd", "index": 24, "type": {"minimums": "x", "maximums": True, "defaults": "1:xx"}},
        {"id": "Changeset", "index": 0, "type": {}},
        "not a value",
    ],
}
