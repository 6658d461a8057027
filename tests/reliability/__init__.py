"""Reliability and security tests: fuzzing, soak, secrets (issue 8)."""
