"""The one-page HTML report of runs and sweeps, and chart export."""
