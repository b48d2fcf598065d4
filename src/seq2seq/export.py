"""`python -m seq2seq.export`: share a trained model as a folder (safetensors, ONNX) (seq2seq.cli.export)."""

from seq2seq.cli.launcher import command, lazy

__getattr__ = lazy({"main": "seq2seq.cli.export"})

if __name__ == "__main__":
    command("export")
