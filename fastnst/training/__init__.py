"""Training (needs the [train] extra: torch, Lightning)."""
