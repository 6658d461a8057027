"""Controller values: read and write the catalog values through the parameterization engine.

For each controller on the bus that the catalog knows, a :class:`ValuesCoordinator` reads its
catalog values in one bus session after setup and then every ``refresh_interval`` minutes
(not every second: every read takes the bus from the controller), and after every write.
Writes are validated, skipped when nothing changes, rate-limited per value and logged.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CONF_REFRESH_INTERVAL,
    CONF_WRITE_LIMIT,
    DEFAULT_REFRESH_INTERVAL,
    DEFAULT_WRITE_LIMIT,
    DOMAIN,
    LOGGER,
)
from .vbus.catalog import CatalogError, ControllerCatalog, catalog_for, catalogs
from .vbus.errors import VBusError
from .vbus.parameters import (
    BusNotOfferedError,
    ChangesetChangedError,
    MemoryIndexCache,
    NoAnswerError,
    ParameterEngine,
    SessionAbortedError,
    Timing,
    UnknownValueError,
    ValueOutOfRangeError,
    ValueRejectedError,
    ValueResult,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .coordinator import PacketKey, PacketState, VBusConfigEntry, VBusCoordinator
    from .vbus.catalog import CatalogValue

#: Engine timeouts (the reference's defaults; tests shorten them).
ENGINE_TIMING: Final = Timing()
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


class ValuesCoordinator(DataUpdateCoordinator[dict[str, int]]):
    """The catalog values (raw, by value id) of one controller."""

    config_entry: VBusConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: VBusConfigEntry,
        engine: ParameterEngine,
        catalog: ControllerCatalog,
        key: PacketKey,
    ) -> None:
        """Read and write ``catalog``'s values of the controller that sends ``key`` packets."""
        minutes = float(entry.options.get(CONF_REFRESH_INTERVAL, DEFAULT_REFRESH_INTERVAL))
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{catalog.name} values",
            update_interval=timedelta(minutes=minutes),
        )
        self.engine = engine
        self.catalog = catalog
        self.key = key
        self.missing: set[str] = set()

    @property
    def controller(self) -> int:
        """The controller's VBus address."""
        return self.key.source

    async def _async_update_data(self) -> dict[str, int]:
        """Read every catalog value, and the values their conditions name, in one bus session."""
        values = self.catalog.values
        conditions = self.catalog.condition_values
        reads = [(v.value_id, v.id_hash) for v in values]
        reads += [(c.value_id, c.id_hash) for c in conditions]
        results = await asyncio.gather(
            *(self.engine.get(self.controller, id_hash=id_hash) for _, id_hash in reads),
            return_exceptions=True,
        )
        data: dict[str, int] = {}
        missing: set[str] = set()
        catalog_ids = {value.value_id for value in values}
        for (value_id, _), result in zip(reads, results, strict=True):
            if isinstance(result, ValueResult):
                data[value_id] = result.value
            elif isinstance(result, (UnknownValueError, ValueRejectedError)):
                if value_id in catalog_ids:  # a condition value may simply not exist
                    missing.add(value_id)
            elif isinstance(result, BaseException):
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="read_failed",
                    translation_placeholders={"error": str(result)},
                ) from result
        self._report_missing(missing)
        return data

    def _report_missing(self, missing: set[str]) -> None:
        """A repair issue when values the controller had are gone (firmware changed)."""
        gone = missing - self.missing if self.data else set()
        self.missing = missing
        if gone:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"values_missing_{self.config_entry.entry_id}_{self.controller:04X}",
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="values_missing",
                translation_placeholders={
                    "controller": self.catalog.name,
                    "values": ", ".join(sorted(gone)),
                },
            )

    def raw(self, value: CatalogValue) -> int | None:
        """The value's last known raw value."""
        return (self.data or {}).get(value.value_id)

    def applies(self, value: CatalogValue) -> bool:
        """Whether ``value`` has an effect in the controller's configuration, as last read."""
        return self.catalog.applies(value, self.data or {})

    async def async_write(self, value: CatalogValue, raw: int) -> ValueResult | None:
        """Write ``raw`` (validated) unless it is the current value; show the acknowledgement."""
        try:
            raw = value.validate_raw(raw)
        except CatalogError as err:
            raise invalid_value(self.label(value), err) from err
        old = self.raw(value)
        if old == raw:
            return None
        self._check_rate(value)
        try:
            result = await self.engine.set(
                self.controller,
                raw,
                id_hash=value.id_hash,
                minimum=value.raw_minimum,
                maximum=value.raw_maximum,
            )
        except VBusError as err:
            raise operation_failed(err, self.label(value), "write_failed") from err
        LOGGER.info(
            "Changed %s of %s from %s to %s", value.value_id, self.catalog.name, old, result.value
        )
        self.async_set_updated_data({**(self.data or {}), value.value_id: result.value})
        return result

    def _check_rate(self, value: CatalogValue) -> None:
        manager: ValuesManager = self.config_entry.runtime_data.values
        manager.check_rate(f"{self.controller:04X}:{value.value_id}", self.label(value))

    def label(self, value: CatalogValue) -> str:
        """What messages call ``value``: its name in Home Assistant's language."""
        return value.name(self.hass.config.language.partition("-")[0])


type ControllerCallback = Callable[[ValuesCoordinator], None]


class ValuesManager:
    """Finds the controllers the catalog knows and keeps one coordinator per controller."""

    def __init__(self, hass: HomeAssistant, entry: VBusConfigEntry) -> None:
        """Create the manager; :meth:`async_setup` loads the index cache."""
        self.hass = hass
        self.entry = entry
        self.cache = StoredIndexCache(hass, entry.entry_id)
        coordinator: VBusCoordinator = entry.runtime_data
        self.engine = ParameterEngine(coordinator.session, cache=self.cache, timing=ENGINE_TIMING)
        self.controllers: dict[int, ValuesCoordinator] = {}
        self._callbacks: list[ControllerCallback] = []
        self._detecting: set[int] = set()
        self._writes: dict[str, deque[float]] = {}

    def check_rate(self, key: str, label: str) -> None:
        """Refuse a write when ``key`` was written too often in the last minute."""
        limit = int(self.entry.options.get(CONF_WRITE_LIMIT, DEFAULT_WRITE_LIMIT))
        now = time.monotonic()
        recent = self._writes.setdefault(key, deque())
        while recent and now - recent[0] > 60:  # noqa: PLR2004 - per minute
            recent.popleft()
        if len(recent) >= limit:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="write_rate_limited",
                translation_placeholders={"value": label, "limit": str(limit)},
            )
        recent.append(now)

    async def async_setup(self) -> None:
        """Load the cache and the catalog (file I/O, off the event loop); watch the bus."""
        await self.cache.async_load()
        await self.hass.async_add_executor_job(catalogs)
        coordinator: VBusCoordinator = self.entry.runtime_data
        self.entry.async_on_unload(coordinator.async_add_packet_callback(self._packet_seen))

    async def async_shutdown(self) -> None:
        """Fail what is still queued and release the bus."""
        await self.engine.close()

    async def async_forget(self, address: int) -> None:
        """The user removed the controller at ``address``: stop reading its values."""
        values = self.controllers.pop(address, None)
        if values is not None:
            await values.async_shutdown()

    @callback
    def async_add_controller_callback(
        self, controller_callback: ControllerCallback
    ) -> CALLBACK_TYPE:
        """Call ``controller_callback`` for every controller now and later."""
        self._callbacks.append(controller_callback)
        for values in list(self.controllers.values()):
            controller_callback(values)
        return lambda: self._callbacks.remove(controller_callback)

    @callback
    def _packet_seen(self, packet: PacketState) -> None:
        address = packet.key.source
        if address in self.controllers or address in self._detecting:
            return
        if not any(catalog.address == address for catalog in catalogs()):
            return
        self._detecting.add(address)
        self.entry.async_create_background_task(
            self.hass, self._async_add_controller(packet.key), f"resol_vbus detect {address:04X}"
        )

    async def _async_add_controller(self, key: PacketKey) -> None:
        catalog = await self._detect_catalog(key.source)
        if catalog is None:
            return  # stays "detecting": no new attempt for each packet
        values = ValuesCoordinator(self.hass, self.entry, self.engine, catalog, key)
        # Read first: whether a setting has an effect decides whether its entity starts enabled.
        # Only then is the controller listed, so that a platform that registers its callback
        # meanwhile creates the entities once, after the read, like the others.
        await values.async_refresh()
        self.controllers[key.source] = values
        self._detecting.discard(key.source)  # if the user removes it, it can come back
        for controller_callback in list(self._callbacks):
            controller_callback(values)

    async def _detect_catalog(self, address: int) -> ControllerCatalog | None:
        """The catalog for ``address``; for several firmware versions, the one that answers.

        A value that only one version's list has is looked up by hash; the first version whose
        value the controller knows wins, else the values all versions share.
        """
        versioned = [c for c in catalogs() if c.address == address and c.major_version]
        if len(versioned) > 1:
            for catalog in sorted(versioned, key=lambda c: -(c.major_version or 0)):
                others = {v.value_id for c in versioned if c is not catalog for v in c.values}
                unique = [v for v in catalog.values if v.value_id not in others]
                if not unique:
                    continue
                try:
                    await self.engine.lookup(address, unique[0].id_hash)
                except VBusError:
                    continue
                return catalog
        return catalog_for(address)
