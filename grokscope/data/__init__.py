"""Every task's data as numpy arrays (no torch): modular arithmetic, seed 001's hierarchies, text, digits."""
