"""Using a trained model: what `checkpoint=` names (find), the Python API (api: `seq2seq.load(...)` ->
TrainedModel.generate), a conversation (chat), shared folders in the Hub's layout (pretrained) and ONNX serving
without PyTorch (serving). Imports: seq2seq.core, data, models, tasks, training (checkpoint files, runs)."""
