"""End-to-end tests: the emulator, a real Home Assistant process and Chromium (marker ``e2e``)."""
