"""Controller values: read and write the catalog values through the parameterization engine.

For each controller on the bus that the catalog knows, a :class:`ValuesCoordinator` reads its
catalog values in one bus session after setup and then every ``refresh_interval`` minutes
(not every second: every read takes the bus from the controller).

What Home Assistant shows is what the controller confirmed (a read, or the acknowledgement of a
write) since the connection last came up. When the values may have changed behind its back (the
connection was lost, the controller stopped sending for a while, its value list changed) they
are unknown, and the entities unavailable, until they are read again, which happens at once. A
write whose outcome is unknown (the connection broke after it was sent) makes that value unknown
until it is read again. While a write waits for the bus, the entity shows the confirmed value and
the requested one as its ``pending`` attribute.

Writes are validated, skipped when the confirmed value is already the requested one (and no
other write to it waits), limited per value to the writes the controller acknowledged in the last
minute (requests merged into one write, or skipped, do not count), and logged.
"""

from __future__ import annotations

import asyncio
import functools
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
    NotSentError,
    ParameterEngine,
    SessionAbortedError,
    Timing,
    UnknownValueError,
    ValueOutOfRangeError,
    ValueRejectedError,
    ValueResult,
)
from .vbus.session import SessionState

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
    (NotSentError, "not_sent"),
    (SessionAbortedError, "connection_lost"),
)
#: Errors after which a write's outcome is unknown: it was sent, but not acknowledged.
_OUTCOME_UNKNOWN: Final = (NoAnswerError, SessionAbortedError)


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
        #: Every value was read since the last invalidation (connection, value list, restart).
        self.current = False
        #: Values the controller confirmed since then (read, or a write acknowledged); not those
        #: whose last write may or may not have reached it.
        self.confirmed: set[str] = set()
        #: Raw values requested by writes still waiting, and how many wait, per value id.
        self.pending: dict[str, int] = {}
        self._waiting: dict[str, int] = {}

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
        self.current = True
        self.confirmed = set(data)
        return data

    @callback
    def async_invalidate(self) -> None:
        """The values may have changed behind our back: unknown (unavailable) until re-read."""
        if self.current or self.confirmed:
            self.current = False
            self.confirmed.clear()
            self.async_update_listeners()

    @callback
    def async_reread(self) -> None:
        """Read every value again now (in the background; repeated requests are debounced)."""
        self.config_entry.async_create_background_task(
            self.hass, self.async_request_refresh(), f"resol_vbus re-read {self.controller:04X}"
        )

    def known(self, value: CatalogValue) -> bool:
        """Whether ``value`` shows what the controller holds (confirmed, current)."""
        return (
            value.value_id in self.confirmed
            and value.value_id not in self.missing
            and self.raw(value) is not None
        )

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
        """Write ``raw`` (validated); show the acknowledgement; ``None`` if nothing to write.

        Nothing is written when the controller confirmed this value already and no other write
        to it waits. Until the acknowledgement the entity keeps the confirmed value and shows
        ``raw`` as pending.
        """
        value_id = value.value_id
        try:
            raw = value.validate_raw(raw)
        except CatalogError as err:
            raise invalid_value(self.label(value), err) from err
        old = self.raw(value)
        if self.known(value) and old == raw and value_id not in self.pending:
            return None
        manager: ValuesManager = self.config_entry.runtime_data.values
        rate_key = f"{self.controller:04X}:{value_id}"
        manager.check_rate(rate_key, self.label(value))
        self.pending[value_id] = raw
        self._waiting[value_id] = self._waiting.get(value_id, 0) + 1
        self.async_update_listeners()
        try:
            result = await self.engine.set(
                self.controller,
                raw,
                id_hash=value.id_hash,
                minimum=value.raw_minimum,
                maximum=value.raw_maximum,
            )
        except VBusError as err:
            self._stop_waiting(value_id)
            if isinstance(err, _OUTCOME_UNKNOWN) and not isinstance(err, NotSentError):
                self._async_unconfirmed(value)
            self.async_update_listeners()
            raise operation_failed(err, self.label(value), "write_failed") from err
        except BaseException:  # cancelled: the caller gave up (the write may still be made)
            self._stop_waiting(value_id)
            self.async_update_listeners()
            raise
        self._stop_waiting(value_id)
        manager.count_write(rate_key)
        LOGGER.info(
            "Changed %s of %s from %s to %s", value_id, self.catalog.name, old, result.value
        )
        self._async_confirm(value_id, result.value)  # one state: the new value, not pending
        return result

    def _stop_waiting(self, value_id: str) -> None:
        self._waiting[value_id] -= 1
        if not self._waiting[value_id]:
            del self._waiting[value_id]
            self.pending.pop(value_id, None)

    @callback
    def _async_unconfirmed(self, value: CatalogValue) -> None:
        """The write was sent but not acknowledged: unknown until read again."""
        self.confirmed.discard(value.value_id)
        self.config_entry.async_create_background_task(
            self.hass, self._async_read_one(value), f"resol_vbus read {value.value_id}"
        )

    async def _async_read_one(self, value: CatalogValue) -> None:
        try:
            result = await self.engine.get(self.controller, id_hash=value.id_hash)
        except VBusError as err:
            LOGGER.debug("Could not read %s again: %s", value.value_id, err)
            return  # it stays unknown until the next complete read
        self._async_confirm(value.value_id, result.value)

    @callback
    def async_confirm_index(self, result: ValueResult) -> None:
        """The controller confirmed ``result`` outside :meth:`async_write` (a write by index).

        If a catalog value has that index (as last looked up under the result's changeset), it
        shows the confirmed value: otherwise a later write of its old value would be skipped.
        """
        cache = self.engine.cache
        for value in self.catalog.values:
            if cache.get(self.controller, result.changeset, value.id_hash) == result.index:
                self._async_confirm(value.value_id, result.value)

    @callback
    def _async_confirm(self, value_id: str, raw: int) -> None:
        """The controller confirmed ``raw`` for ``value_id`` (an acknowledgement or a read)."""
        self.confirmed.add(value_id)
        self.async_set_updated_data({**(self.data or {}), value_id: raw})

    def label(self, value: CatalogValue) -> str:
        """What messages call ``value``: its name in Home Assistant's language."""
        return value.name(self.hass.config.language.partition("-")[0])


type ControllerCallback = Callable[[ValuesCoordinator], None]


def _discard(listeners: list[Callable[[], None]], listener: Callable[[], None]) -> None:
    if listener in listeners:
        listeners.remove(listener)


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
        self._connected = True

    def _recent_writes(self, key: str) -> deque[float]:
        now = time.monotonic()
        recent = self._writes.setdefault(key, deque())
        while recent and now - recent[0] > 60:  # noqa: PLR2004 - per minute
            recent.popleft()
        return recent

    def check_rate(self, key: str, label: str) -> None:
        """Refuse a write when the controller acknowledged too many writes of ``key`` lately.

        Only writes count (:meth:`count_write`): requests merged into one write or skipped do
        not, so a slider's steps cost the writes the controller made, not the clicks.
        """
        limit = int(self.entry.options.get(CONF_WRITE_LIMIT, DEFAULT_WRITE_LIMIT))
        if len(self._recent_writes(key)) >= limit:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="write_rate_limited",
                translation_placeholders={"value": label, "limit": str(limit)},
            )

    def count_write(self, key: str) -> None:
        """The controller acknowledged a write of ``key``."""
        self._recent_writes(key).append(time.monotonic())

    async def async_setup(self) -> None:
        """Load the cache and the catalog (file I/O, off the event loop); watch the bus."""
        await self.cache.async_load()
        await self.hass.async_add_executor_job(catalogs)
        coordinator: VBusCoordinator = self.entry.runtime_data
        self.entry.async_on_unload(coordinator.async_add_packet_callback(self._packet_seen))
        self.entry.async_on_unload(coordinator.session.add_state_listener(self._session_state))
        self.entry.async_on_unload(self.engine.add_changeset_listener(self._changeset_read))

    @callback
    def _session_state(self, state: SessionState, _reason: BaseException | None) -> None:
        """Values are unknown while disconnected and read again when the connection is back."""
        if state == SessionState.CONNECTED:
            if not self._connected:
                self._connected = True
                for values in self.controllers.values():
                    values.async_reread()
        elif state != SessionState.CONNECTING:
            self._connected = False
            for values in self.controllers.values():
                values.async_invalidate()

    @callback
    def _changeset_read(self, controller: int, old: int | None, new: int) -> None:
        """A new value list (firmware update, new configuration): read everything again."""
        values = self.controllers.get(controller)
        if values is not None and old is not None and old != new:
            LOGGER.info("The value list of %s changed; reading its values again", values.name)
            values.async_invalidate()
            values.async_reread()

    @callback
    def _packet_availability(self, address: int, packet: PacketState) -> None:
        """A controller that stopped sending may have been restarted: read again when it sends."""
        values = self.controllers.get(address)
        if values is None:
            return
        if packet.available:
            values.async_reread()
        else:
            values.async_invalidate()

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
        listener = functools.partial(self._packet_availability, address, packet)
        packet.availability_listeners.append(listener)
        self.entry.async_on_unload(lambda: _discard(packet.availability_listeners, listener))
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
