"""`trainer.precision`: fp32, bf16, or auto, which measures.

bf16 autocast runs the matrix products in bf16 (the weights, the loss and the softmax stay fp32). Whether
that pays depends on the machine and on the model's shapes: on an Intel Xeon with AMX-BF16 a Peeky epoch
took 0.7 of its fp32 time, on an AMD EPYC with avx512_bf16 0.6-0.8, on an H200 it only added casts, and
on an AVX2-only CPU oneDNN has no bf16 kernels at all. So `auto` asks the machine, for the run's own model
and batch:

1. bf16 must run here (seq2seq.core.device.bf16_missing; else fp32);
2. a few training steps (forward and backward) of a copy of the model are timed in both precisions,
   alternating, each side's best counting (`probe`: a fraction of a second for the addition models, a few
   seconds for the 2 x 650 language model); bf16 is taken when it is at least MIN_SPEEDUP faster
3. and its accuracy guard holds on that batch: the loss within MAX_LOSS_CHANGE of fp32's and the
   gradient pointing the same way (cosine of at least MIN_GRAD_COSINE). The long-run evidence behind these
   bounds is in docs/speed.md (25-epoch Peeky under bf16: best exact match 98.9-99.8%; PTB rnnlm's test
   perplexity 136.5 in bf16 against 138.5).

The answer is cached per machine, torch version, thread count, model and batch shape
($XDG_CACHE_HOME/seq2seq/precision.json), so a second run of the same model decides at once; the run logs
the choice and the measured ratio, and records the precision it chose in its checkpoints, so a resumed run
keeps it. The random generators are left as they were: a run probed and a run that read the cache train
alike.
"""

import copy
import json
import logging
import os
import time
from pathlib import Path

import torch

from seq2seq.core.device import bf16_missing, check_precision, cpu_name
from seq2seq.core.errors import CheckpointError

log = logging.getLogger(__name__)

MIN_SPEEDUP = 1.05  # bf16 must beat fp32 by this much: a tie stays in full precision
MAX_LOSS_CHANGE = 0.01  # relative change of the probe batch's loss
MIN_GRAD_COSINE = 0.99
ROUNDS = 3  # alternating rounds of timed steps per precision
ROUND_SECONDS = 0.05  # each round runs steps for about this long (at least one step)
MAX_CACHED = 200  # entries kept in the cache file, the newest


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "seq2seq" / "precision.json"


def machine() -> dict:
    """What the answer depends on besides the model: the processor (or GPU), torch and the thread count."""
    try:
        flags = sorted({"avx2", "avx512f", "avx512_bf16", "amx_bf16"} & set(Path("/proc/cpuinfo").read_text().split()))
    except OSError:
        flags = []
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()
    return {"device": device, "flags": flags, "torch": torch.__version__, "threads": torch.get_num_threads()}


def cache_key(device: torch.device, model_spec: dict, batch) -> str:
    shapes = [list(t.shape) for t in batch if isinstance(t, torch.Tensor)] if isinstance(batch, tuple | list) else []
    key = {**machine(), "on": device.type, "model": model_spec, "batch": shapes}
    return json.dumps(key, sort_keys=True, default=str)


def read_cache() -> dict:
    """The cache's entries; an unreadable or foreign file is no cache (it is rewritten)."""
    from seq2seq.core.files import read_json

    path = cache_file()
    try:
        entries = read_json(path, "precision cache") if path.is_file() else {}
    except CheckpointError:
        return {}
    return entries if isinstance(entries, dict) else {}


def write_cache(key: str, answer: dict) -> None:
    from seq2seq.core.files import write_file

    entries = {k: v for k, v in read_cache().items() if k != key and isinstance(v, dict)}
    entries[key] = answer
    kept = dict(list(entries.items())[-MAX_CACHED:])
    try:
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        write_file(cache_file(), json.dumps(kept, indent=1))
    except OSError as e:  # a read-only home: the answer is measured again next time
        log.info("the precision cache %s cannot be written (%s)", cache_file(), e.strerror or e)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe(task, model: torch.nn.Module, batch, device: torch.device) -> dict:
    """Time forward + backward of `batch` on a copy of `model` in fp32 and bf16 (alternating rounds, the
    best of each), and compare the two precisions' loss and gradients (eval mode: no dropout). The model
    and the random generators are left as they were."""
    from seq2seq.training.build import autocast

    casts = {"fp32": autocast(device, "fp32"), "bf16": autocast(device, "bf16")}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        twin = copy.deepcopy(model)

        def step(precision: str) -> tuple[float, list[torch.Tensor]]:
            twin.zero_grad(set_to_none=True)
            with casts[precision]:
                loss, _ = task.training_step(twin, batch, None)
            loss.backward()
            return loss.item(), [p.grad for p in twin.parameters() if p.grad is not None]

        twin.eval()
        (loss32, grads32), (loss16, grads16) = step("fp32"), step("bf16")  # also the warm-up of each
        flat32, flat16 = torch.cat([g.flatten() for g in grads32]), torch.cat([g.flatten() for g in grads16])
        cosine = torch.nn.functional.cosine_similarity(flat32.float(), flat16.float(), dim=0).item()
        twin.train()
        sync(device)
        started = time.perf_counter()
        step("fp32")
        sync(device)
        per_round = max(1, min(20, round(ROUND_SECONDS / max(time.perf_counter() - started, 1e-6))))
        best = {"fp32": float("inf"), "bf16": float("inf")}
        for _ in range(ROUNDS):
            for precision in best:
                started = time.perf_counter()
                for _ in range(per_round):
                    step(precision)
                sync(device)
                best[precision] = min(best[precision], (time.perf_counter() - started) / per_round)
    return {
        "speedup": best["fp32"] / best["bf16"],
        "loss_change": abs(loss16 - loss32) / max(abs(loss32), 1e-12),
        "grad_cosine": cosine,
    }


def decide(measured: dict) -> tuple[str, str]:
    """The precision a probe's measurements choose, and why."""
    speedup, change, cosine = measured["speedup"], measured["loss_change"], measured["grad_cosine"]
    if speedup < MIN_SPEEDUP:
        return "fp32", f"bf16 ran at {speedup:.2f}x the speed of fp32 on this model's steps"
    if change > MAX_LOSS_CHANGE or cosine < MIN_GRAD_COSINE:
        return "fp32", (f"bf16 was {speedup:.2f}x as fast but changed the loss by {100 * change:.2f}% "
                        f"(gradient cosine {cosine:.4f}): outside the accuracy guard")  # fmt: skip
    return "bf16", (f"{speedup:.2f}x the speed of fp32 on this model's steps, loss within {100 * change:.2f}%, "
                    f"gradient cosine {cosine:.4f}")  # fmt: skip


def choose(precision: str, setup, saved: str | None = None) -> str:
    """The precision a run trains in: fp32 and bf16 as given (bf16 refused where it cannot run), `saved`
    (the one a resumed run chose at its start), or for auto the probe's answer (cached). Logged once."""
    check_precision(precision, setup.device)
    if precision != "auto":
        return precision
    if saved in ("fp32", "bf16"):
        log.info("trainer.precision=auto: %s, as this run chose when it started", saved)
        return saved
    missing = bf16_missing(setup.device.type)
    if missing:
        chosen, why = "fp32", f"bf16 cannot run here: {missing}"
    else:
        batch = setup.task.train_batches(0)[0]
        key = cache_key(setup.device, setup.model_spec, batch)
        answer = read_cache().get(key)
        if not (isinstance(answer, dict) and answer.get("choice") in ("fp32", "bf16") and "why" in answer):
            chosen, why = decide(probe(setup.task, setup.model, batch, setup.device))
            answer = {"choice": chosen, "why": why, "date": time.strftime("%Y-%m-%d %H:%M")}
            write_cache(key, answer)
            why += ", measured now"
        else:
            why = f"{str(answer['why'])[:200]}, measured {str(answer.get('date', 'before'))[:20]} ({cache_file()})"
        chosen = answer["choice"]
    log.info("trainer.precision=auto: %s (%s)", chosen, why)
    return chosen
