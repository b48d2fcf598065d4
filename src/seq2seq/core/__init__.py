"""The core every layer may use: errors, the one vocabulary of validation (checks), plain files read and
written (files), options derived from constructors (options), the registry of models and tasks, the decoding
options, where models run (device, threads, memory), optional extras and compatibility with earlier versions.
It imports nothing of the project's other packages."""

__version__ = "0.5.0"
