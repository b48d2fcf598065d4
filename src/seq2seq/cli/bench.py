"""Speed benchmark: `python -m seq2seq.bench [--quick] [--out bench.json]`.

Times, after a warm-up and in one process, the same `train_step` and `task.evaluate` that the
training loop runs, with each experiment's own config:

- addition (baseline, reverse, peeky at the chapter's hyperparameters): training examples/s and
  seconds per epoch, validation questions/s (all 5,000 questions, one batch; the model is barely
  trained, so every answer is decoded again: validation's worst case);
- PTB `rnnlm` and `better_rnnlm`: training and evaluation tokens/s, seconds per training epoch.

--families times each model family instead, side by side at its experiment's sizes: Peeky with each
recurrent cell and the Transformer on addition, rnnlm with each cell and the Transformer LM on PTB.

--quick times fewer steps (and a prefix of the evaluation stream for better_rnnlm) and
extrapolates to an epoch: CI runs it to show the loop has not become slower. --precision bf16 (or
auto) times steps and evaluation under the autocast that `trainer.precision` gives training.
"""

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from seq2seq.core.device import bf16_missing
from seq2seq.training.build import autocast, build
from seq2seq.training.config import CONFIG_DIR
from seq2seq.training.loop import train_step
from seq2seq.training.precision import choose as choose_precision


def compose_experiment(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"experiment={name}", *overrides])


def clock(device: torch.device) -> float:
    """The time once the device has finished its queued work: CUDA runs asynchronously, so reading the
    clock without synchronizing would time the launches, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def precision_of(setup, cfg) -> torch.autocast:
    """The autocast training uses for `trainer.precision` (fp32: a disabled one; auto: as training decides)."""
    return autocast(setup.device, choose_precision(cfg.trainer.precision, setup))


def time_steps(setup, cfg, batches, warmup: int, steps: int) -> float:
    """Seconds per optimizer step over `steps` steps after `warmup` steps, at `trainer.precision`."""
    setup.model.train()
    carry, amp = None, precision_of(setup, cfg)
    for i in range(warmup + steps):
        if i == warmup:
            started = clock(setup.device)
        batch = batches[i]
        _, _, carry = train_step(setup.task, setup.model, setup.optimizer, batch, carry, cfg.trainer.grad_clip, amp)
    return (clock(setup.device) - started) / steps


def time_eval(setup, cfg, split: str) -> float:
    setup.model.eval()
    with precision_of(setup, cfg):
        setup.task.evaluate(setup.model, split)  # warm-up
        started = clock(setup.device)
        setup.task.evaluate(setup.model, split)
        return clock(setup.device) - started


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --families: (experiment, its overrides) of each family, addition then PTB
FAMILIES = (
    [("peeky_addition", [f"model.cell={cell}"]) for cell in ("lstm", "gru", "rnn")] + [("transformer_addition", [])],
    [("rnnlm_ptb", [f"model.cell={cell}"]) for cell in ("lstm", "gru", "rnn")] + [("transformer_ptb", [])],
)


def label(name: str, extra: list[str]) -> str:
    return " ".join([name, *(o.split(".")[-1] for o in extra), "train"])


def bench_addition(name: str, quick: bool, overrides: list[str], extra: list[str] = ()) -> dict:
    cfg = compose_experiment(name, [*overrides, *extra])
    setup = build(cfg)
    batches = setup.task.train_batches(0) * 2  # room for the warm-up before a full epoch
    per_epoch = len(batches) // 2
    steps = 60 if quick else per_epoch
    step_s = time_steps(setup, cfg, batches, warmup=20, steps=steps)
    eval_s = time_eval(setup, cfg, "val")
    examples = len(setup.task.x_train)
    return {
        "bench": label(name, extra),
        "epoch_s": step_s * per_epoch,
        "rate": examples / (step_s * per_epoch),
        "unit": "examples/s",
        "eval_s": eval_s,
        "eval_rate": len(setup.task.x_val) / eval_s,
        "eval_unit": "questions/s",
        "peak_mb": peak_memory_mb(),
    }


def bench_language_model(name: str, quick: bool, ptb_dir: str | None, overrides: list[str], extra=()) -> dict:
    cfg = compose_experiment(name, [*overrides, *extra, *([f"task.data_dir={ptb_dir}"] if ptb_dir else [])])
    setup = build(cfg)
    batches = setup.task.train_batches(0)
    heavy = name == "better_rnnlm_ptb"  # 13 M parameters: fewer steps, a prefix of the test stream when quick
    steps = (3 if quick else 20) if heavy else (10 if quick else 100)
    step_s = time_steps(setup, cfg, batches, warmup=3, steps=steps)
    tokens_per_step = batches[0][0].numel()
    test = setup.task.eval_data["test"]
    if quick and heavy:
        setup.task.eval_data["test"] = test[:, : 20 * setup.task.time_size + 1]  # a prefix of the test stream
    eval_tokens = setup.task.eval_data["test"][:, 1:].numel()
    eval_s = time_eval(setup, cfg, "test")
    return {
        "bench": label(name, extra),
        "epoch_s": step_s * len(batches),
        "rate": tokens_per_step / step_s,
        "unit": "tokens/s",
        "eval_s": eval_s * test[:, 1:].numel() / eval_tokens,  # seconds for the whole test set
        "eval_rate": eval_tokens / eval_s,
        "eval_unit": "tokens/s",
        "peak_mb": peak_memory_mb(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps, extrapolated (CI)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench.json"), help="JSON results file")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: trainer.threads's)")
    parser.add_argument("--ptb-dir", default=None, help="folder with ptb.*.txt (default: task.data_dir)")
    parser.add_argument("--skip-ptb", action="store_true", help="addition only")
    parser.add_argument("--families", action="store_true", help="each model family (cells, Transformers) instead")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train (default: cpu)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32", help="trainer.precision")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.precision == "bf16" and bf16_missing(args.device):
        parser.error(f"--precision bf16 is unavailable: {bf16_missing(args.device)}")
    overrides = [f"trainer.device={args.device}", f"trainer.precision={args.precision}"]
    overrides += [f"trainer.threads={args.threads}"] if args.threads else []

    if args.families:
        rows = [bench_addition(name, args.quick, overrides, extra) for name, extra in FAMILIES[0]]
        if not args.skip_ptb:
            rows += [bench_language_model(name, args.quick, args.ptb_dir, overrides, extra)
                     for name, extra in FAMILIES[1]]  # fmt: skip
    else:
        names = ("baseline_addition", "reverse_addition", "peeky_addition")
        rows = [bench_addition(name, args.quick, overrides) for name in names]
        if not args.skip_ptb:
            names = ("rnnlm_ptb", "better_rnnlm_ptb")
            rows += [bench_language_model(name, args.quick, args.ptb_dir, overrides) for name in names]

    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "precision": args.precision,
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"torch {info['torch']}, {info['device']}, {args.precision}, {info['threads']} threads, quick={args.quick}")
    print(f"{'benchmark':<34}{'s/epoch':>9}{'train rate':>22}{'eval s':>9}{'eval rate':>24}{'peak MB':>9}")
    for r in rows:
        print(
            f"{r['bench']:<34}{r['epoch_s']:>9.2f}{r['rate']:>12,.0f} {r['unit']:<9}{r['eval_s']:>9.3f}"
            f"{r['eval_rate']:>12,.0f} {r['eval_unit']:<11}{r['peak_mb']:>9.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**info, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
