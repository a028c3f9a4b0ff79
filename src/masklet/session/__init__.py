"""Session layer: typed tracking state (objects, prompts, memory bank, feature cache)."""
