"""Diagnostics: what a bug report needs, without the password or the via tag."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD

from .const import CONF_VIA_TAG

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .coordinator import VBusConfigEntry

TO_REDACT = {CONF_PASSWORD, CONF_VIA_TAG}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
) -> dict[str, Any]:
    """Connection settings, session counters and the latest raw data of every device."""
    coordinator = entry.runtime_data
    session = coordinator.session
    stats = session.stats
    spec = coordinator.spec
    engine = coordinator.values.engine
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "session": {
            "state": session.state.value,
            "last_error": session.config.redact(str(session.last_error))
            if session.last_error
            else None,
            "connects": session.connects,
            "reconnects": session.reconnects,
            "bytes": stats.bytes,
            "frames": stats.frames,
            "junk_bytes": stats.junk_bytes,
            "checksum_errors": stats.checksum_errors,
            "channels": [{"number": c.number, "name": c.name} for c in session.channels],
        },
        "specification_datecode": spec.datecode,
        "packets": [
            {
                "id": key.packet_id,
                "device": spec.device_name(key.source, key.destination),
                "available": packet.available,
                "frame_data": packet.frame_data.hex(),
            }
            for key, packet in sorted(
                coordinator.packets.items(), key=lambda item: item[0].packet_id
            )
        ],
        "unknown_packets": [
            {"id": key.packet_id, "frame_data": data.hex()}
            for key, data in sorted(
                coordinator.unknown_packets.items(), key=lambda item: item[0].packet_id
            )
        ],
        # Frames ignored because a bound was reached (forged or corrupted addresses).
        "ignored_frames": {bound.value: count for bound, count in coordinator.ignored.items()},
        "parameter_engine": {
            "ignored_offers": engine.ignored_offers,
            "dropped_frames": engine.dropped_frames,
        },
    }
