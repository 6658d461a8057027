"""Custom integrations for Home Assistant (lets tests import `custom_components.resol_vbus`)."""
