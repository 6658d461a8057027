"""The rule by which the end-to-end tests read Home Assistant's log (``conftest.complaints``).

Not an end-to-end test: it runs in the unit test lanes, on records as Home Assistant writes them.
"""

from __future__ import annotations

import pytest

from .conftest import complaints

STAMP = (
    "2026-11-20 10:00:00.123+00:00"  # as from Home Assistant 2026.11; 2026.10 left out the offset
)
FRAME = (
    f"{STAMP} WARNING (MainThread) [homeassistant.helpers.frame] Detected that custom"
    " integration 'resol_vbus' calls device_registry.async_get_or_create with a dict as"
    " device info at custom_components/resol_vbus/entity.py, line 80: DeviceInfo(**info)."
    " This will stop working in Home Assistant 2027.11, please create a bug report at"
    " https://github.com/resol-vbus-ha/resol_vbus/issues"
)
CONSTANT = (
    f"{STAMP} WARNING (MainThread) [homeassistant.const] UnitOfX was used from resol_vbus, this"
    " is a deprecated constant which will be removed in HA Core 2027.1. Use Y instead"
)
PY_WARNING = (
    f"{STAMP} WARNING (MainThread) [py.warnings] /repo/custom_components/resol_vbus/sensor.py:9:"
    " DeprecationWarning: old is deprecated\n  value = old()"
)
UNIT = (
    f"{STAMP} WARNING (MainThread) [homeassistant.components.sensor] Entity sensor.x"
    " (<class 'custom_components.resol_vbus.sensor.VBusSensor'>) is using native unit of"
    " measurement 'Wh' which is not a valid unit for the device class ('power') it is using;"
    " Please update your configuration if your entity is manually configured, otherwise create"
    " a bug report at https://github.com/resol-vbus-ha/resol_vbus/issues"
)
CORE = (
    f"{STAMP} ERROR (MainThread) [homeassistant.core] Unable to remove unknown job listener"
    " <Job ... custom_components.resol_vbus.coordinator ...>"
)
TRACEBACK = (
    f"{STAMP} ERROR (MainThread) [homeassistant.helpers.frame] Detected code that uses a"
    " removed API. Please report this issue\nTraceback (most recent call last):\n"
    '  File "/repo/custom_components/resol_vbus/select.py", line 5, in f'
)


def test_frame_helper_core_deprecations_and_bug_reports_count() -> None:
    records = [FRAME, CONSTANT, PY_WARNING, UNIT, CORE, TRACEBACK]
    log = "\n".join(["Logging to the file (no record yet)", *records])
    # First lines only; the last names the integration in its traceback only.
    assert complaints(log) == [record.partition("\n")[0] for record in records]
    before_2026_11 = log.replace("+00:00 ", " ")
    assert complaints(before_2026_11) == [line.replace("+00:00 ", " ") for line in complaints(log)]


def test_a_log_in_an_unknown_format_is_not_taken_for_a_clean_one() -> None:
    assert complaints("") == []
    with pytest.raises(ValueError, match="no record"):
        complaints(FRAME.replace(STAMP, "20.11.2026 10:00"))


def test_other_integrations_the_integrations_own_logs_and_notes_do_not_count() -> None:
    loader = (
        f"{STAMP} WARNING (SyncWorker_0) [homeassistant.loader] We found a custom integration"
        " resol_vbus which has not been tested by Home Assistant. This component might cause"
        " stability problems, be sure to disable it if you experience issues with Home Assistant"
    )
    own = (
        f"{STAMP} WARNING (MainThread) [custom_components.resol_vbus.coordinator] The option is"
        " deprecated; migrated"
    )
    info = f"{STAMP} INFO (MainThread) [homeassistant.setup] Setting up resol_vbus (deprecated)"
    # An error, not a complaint: test_no_errors_logged_by_the_integration's business.
    error = (
        f"{STAMP} ERROR (MainThread) [homeassistant.config_entries] Error setting up entry"
        " DeltaSol MX for resol_vbus"
    )
    records = [FRAME.replace("resol_vbus", "other"), loader, own, info, error]
    assert complaints("\n".join(records)) == []
