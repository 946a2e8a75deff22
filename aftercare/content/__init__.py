"""The content stage: the clinic's YAML read, validated and turned into a typed model."""
