"""Helpers for the controller values: the stored index cache and how failures are reported.

The values themselves are read and written by :class:`~.coordinator.ValuesCoordinator`; this
module holds what it and the service actions share and what needs none of Home Assistant's
coordinator machinery: value-ID hash → index mappings kept in Home Assistant's storage, and the
translated errors for a failed read or write or a value a user may not set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .vbus.parameters import (
    BusNotOfferedError,
    ChangesetChangedError,
    MemoryIndexCache,
    NoAnswerError,
    NotSentError,
    SessionAbortedError,
    UnknownValueError,
    ValueOutOfRangeError,
    ValueRejectedError,
)

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .vbus.errors import VBusError

STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 10


class StoredIndexCache(MemoryIndexCache):
    """Value-ID hash → index mappings, saved in Home Assistant's storage per config entry.

    Keyed by controller and changeset, so that after a restart no look-ups are needed and a
    firmware update (a new changeset) does not reuse stale indices.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Create the cache for ``entry_id``; call :meth:`async_load` before use."""
        super().__init__()
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.indices"
        )

    async def async_load(self) -> None:
        """Read the saved mappings."""
        data = await self._store.async_load() or {}
        self.entries = dict(data.get("entries", {}))

    def put(self, controller: int, changeset: int, id_hash: int, index: int) -> None:
        """Remember an index and save soon."""
        super().put(controller, changeset, id_hash, index)
        self._store.async_delay_save(lambda: {"entries": self.entries}, SAVE_DELAY)


#: Failures a user can act on get their own message (what happened, what to do); most specific
#: class first. Anything else is ``read_failed`` / ``write_failed`` with the library's text.
_FAILURES: Final[tuple[tuple[type[VBusError], str], ...]] = (
    (ChangesetChangedError, "changeset_changed"),
    (BusNotOfferedError, "bus_not_offered"),
    (NoAnswerError, "no_answer"),
    (ValueRejectedError, "value_rejected"),
    (UnknownValueError, "value_unknown"),
    (NotSentError, "not_sent"),
    (SessionAbortedError, "connection_lost"),
)


def invalid_value(value: str, err: Exception) -> ServiceValidationError:
    """The error for a value the user asked for that ``value`` cannot take."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="invalid_value",
        translation_placeholders={"value": value, "error": str(err)},
    )


def operation_failed(err: VBusError, value: str, fallback: str) -> HomeAssistantError:
    """The Home Assistant error for a failed read or write of ``value`` (a name or label)."""
    if isinstance(err, ValueOutOfRangeError):  # the user's input, not a failure
        return invalid_value(value, err)
    key = next((key for kind, key in _FAILURES if isinstance(err, kind)), fallback)
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"value": value, "error": str(err)},
    )
