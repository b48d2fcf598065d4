"""Exceptions the project raises on bad input. Their messages are meant for the user, not a traceback."""


class Seq2seqError(Exception):
    """Base class: a problem with the user's input (data, config or checkpoint)."""


class DataError(Seq2seqError, ValueError):
    """A data file is missing or malformed. The message names the file and, where known, the line."""


class CheckpointError(Seq2seqError, ValueError):
    """A file is not a usable checkpoint of this project, or does not fit the current config."""


class ConfigError(Seq2seqError, ValueError):
    """A config value is impossible (the message names the key)."""


class NonFiniteLossError(Seq2seqError):
    """Training met a NaN or infinite loss or weight: it stops, keeping the last good checkpoint."""


class TrainingInterrupted(Seq2seqError):
    """Raised after a stop signal, once the resumable checkpoint is written and the logs closed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
