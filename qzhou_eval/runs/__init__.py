"""Wiring a composed config into an mteb run: identity of a run, and the run itself."""
