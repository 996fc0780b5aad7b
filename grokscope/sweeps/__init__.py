"""Sweeps: grids of run configs, their ids and groups, and the sweep index (no torch)."""
