"""Constants for the RESOL VBus integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "resol_vbus"
LOGGER: Final = logging.getLogger(__package__)
MANUFACTURER: Final = "RESOL"

# Connection data (entry.data); host, port and password use Home Assistant's CONF_* names.
CONF_CONNECTION: Final = "connection"  # CONNECTION_LOCAL, CONNECTION_VBUSNET or CONNECTION_SERIAL
CONNECTION_LOCAL: Final = "local"
CONNECTION_VBUSNET: Final = "vbusnet"
#: A serial port (VBus/USB adapter, a controller's USB port, a UART): its path is CONF_DEVICE.
CONNECTION_SERIAL: Final = "serial"
CONF_VIA_TAG: Final = "via_tag"
CONF_CHANNEL: Final = "channel"  # DL3 VBus channel, 0 = none selected
CONF_TLS: Final = "tls"
# What the device-information endpoint reported at setup (when reachable).
CONF_SERIAL: Final = "serial"
CONF_PRODUCT: Final = "product"
CONF_FIRMWARE: Final = "firmware"

VBUSNET_HOST: Final = "vbus.net"

# Options (entry.options).
CONF_MIN_INTERVAL: Final = "min_interval"  # minimum seconds between state writes per entity
DEFAULT_MIN_INTERVAL: Final = 0.0
#: Options of entries before 1.2: the language of entity names (now Home Assistant's own).
CONF_LANGUAGE_RETIRED: Final = "language"
CONF_REFRESH_INTERVAL: Final = "refresh_interval"  # minutes between reads of controller values
DEFAULT_REFRESH_INTERVAL: Final = 10.0
CONF_WRITE_LIMIT: Final = "write_limit"  # writes per value per minute
DEFAULT_WRITE_LIMIT: Final = 4
CONF_ALLOW_ANY_VALUE: Final = "allow_any_value"  # services may write values outside the catalog

#: State attribute of a settings entity while a write waits for the bus: the requested value.
ATTR_PENDING: Final = "pending"
