"""seq2seq: LSTM language models and Encoder-Decoder models in PyTorch, driven by Hydra."""

__version__ = "0.1.0"
