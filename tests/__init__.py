"""Tests for the RESOL VBus integration."""
