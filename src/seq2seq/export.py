"""`python -m seq2seq.export`: share a trained model as a folder (safetensors, ONNX) (seq2seq.cli.export)."""

from seq2seq.cli.export import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
