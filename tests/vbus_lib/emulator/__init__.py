"""The device emulator: handshakes per personality, channel sources, bus master, faults, CLI.

The emulator is driven with raw asyncio streams on loopback, so every expectation is the exact
bytes a client sees.
"""
