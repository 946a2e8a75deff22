"""The check stage: house rules over loaded content (reading level, safety, private subjects)."""
