"""Config flow for the RESOL VBus integration."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult

from .const import DOMAIN


class ResolVBusConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle a config flow for RESOL VBus."""

    VERSION = 1

    async def async_step_user(
        self,
        user_input: dict[str, Any] | None = None,  # noqa: ARG002 - no fields yet
    ) -> ConfigFlowResult:
        """Show the user step; it has no fields yet."""
        return self.async_show_form(step_id="user")
