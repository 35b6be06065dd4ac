"""Turning a cell execution into a cell run: analysis, fingerprints, environment, RNG."""
