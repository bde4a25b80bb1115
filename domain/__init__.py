"""Pure, deterministic domain code (importable inside the Temporal workflow sandbox)."""
