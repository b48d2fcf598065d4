"""`seq2seq.serving`: a model exported with `format=onnx` (`export`, which needs PyTorch) and decoded with
onnxruntime and numpy alone (`OnnxModel`, no PyTorch); both live in seq2seq.inference.serving."""

from seq2seq.inference.serving import OnnxModel, export

__all__ = ["OnnxModel", "export"]
