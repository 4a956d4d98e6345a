"""End-to-end tests (CLI in a subprocess)."""
