"""Runners: read run stores and sweeps, apply the measures, return tidy rows and Datasets."""
