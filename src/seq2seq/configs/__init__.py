"""Hydra configs of the project (a package, so Hydra finds them through importlib.resources)."""
