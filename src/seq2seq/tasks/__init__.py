"""Tasks own the data of an experiment and the task-specific parts of the shared loop.

The loop in `seq2seq.train` only calls the interface below, so a new task is a new class and a
new `configs/task/*.yaml`, never a branch in the loop:

- `vocab_size`, `monitor` (metric that picks `best.pt`), `mode` ("max" or "min")
- `to(device)`: move the task's tensors to the training device once
- `train_batches(epoch)`: the epoch's batches, in an order fixed by the seed and the epoch
- `training_step(model, batch, carry) -> (loss, carry)`: `carry` is state kept between the
  batches of an epoch (the language model's LSTM state); None at the start of an epoch
- `train_metrics(mean_loss)`: extra per-epoch training scalars (e.g. `train/ppl`)
- `evaluate(model, split) -> (metrics, text)`: metrics named `<split>/<name>`, text to log or None
- `figures(model) -> {name: matplotlib Figure}`: images for TensorBoard after each epoch (may be empty)
- `final_splits`: splits evaluated once with the best checkpoint when training ends
- `state_dict()`: what generation needs to rebuild the task's vocabulary and input handling
  (for Encoder-Decoder tasks, see `seq2seq.tasks.codec`)
"""

from seq2seq.tasks.addition import AdditionTask
from seq2seq.tasks.captions import CaptionsTask
from seq2seq.tasks.language_model import LanguageModelTask
from seq2seq.tasks.pairs import ChitchatTask, PairsTask, ProgramsTask, TsvTask

__all__ = ["AdditionTask", "CaptionsTask", "ChitchatTask", "LanguageModelTask", "PairsTask", "ProgramsTask", "TsvTask"]
