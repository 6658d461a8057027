"""Constants for the RESOL VBus integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "resol_vbus"
