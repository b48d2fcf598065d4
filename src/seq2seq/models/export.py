"""What an ONNX export of a model is, declared by each model family (`onnx_export`): the graphs to write and
the signature the runner (seq2seq.inference.serving.OnnxModel, numpy and onnxruntime only) reads from the
folder's config.json to drive them, whatever the model's state:

    encoder   the graph that reads the input once (None: a language model reads its prompt through `step`)
    step      one decoding step: (the tokens to feed, *memory, *state) -> (logits of the last position, *state)
    memory    the encoder's outputs every step reads unchanged (an Encoder-Decoder's states and summary)
    state     the step's recurrent state, fed back from its outputs: an LSTM's h and c, a GRU's h
    initial   where the first state comes from: "encoder" (its outputs after the memory), else the shapes of
              zeros to start from, "B" standing for the batch ({"h": [layers, "B", hidden], ...})
"""

from dataclasses import dataclass, field

import torch


@dataclass
class OnnxGraph:
    file: str  # encoder.onnx, decoder_step.onnx, step.onnx
    module: torch.nn.Module  # forward(*inputs) -> outputs, the model a submodule (its weights the graph's)
    inputs: tuple  # example tensors of a batch of 2
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict = field(default_factory=dict)


@dataclass
class OnnxExport:
    graphs: list[OnnxGraph]
    signature: dict  # written to config.json's "onnx" (the keys of this module's docstring)
