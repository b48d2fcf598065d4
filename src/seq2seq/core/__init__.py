"""The core every layer may use: errors, the one vocabulary of validation (checks), plain files read and
written (files), options derived from constructors (options), the registry of models, tasks and families, the
decoding options, where models run (device, threads, memory), optional extras (extras) and compatibility with
earlier versions (compat). Imports: nothing of the project's other packages; no torch at import time."""

__version__ = "0.5.0"
