"""seq2seq: LSTM language models and Encoder-Decoder models in PyTorch, driven by Hydra.

import seq2seq
model = seq2seq.load("outputs/peeky_addition/<run>")
model.generate(["16+75", "582+84"])
"""

from seq2seq.core import __version__

__all__ = ["TrainedModel", "__version__", "load"]


def __getattr__(name: str):
    # The API is imported on first use, so `import seq2seq.<module>` stays light.
    if name in ("TrainedModel", "load"):
        from seq2seq.inference import api

        return getattr(api, name)
    raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
