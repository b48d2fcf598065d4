"""Short runs, their metrics (and, with --tiny, their answers and weights) written as JSON: run it before and
after a change and compare, so that "behaviour unchanged" is a measured claim.

    python scripts/behaviour_check.py --tiny --out before.json        # seconds-long runs of every family
    python scripts/behaviour_check.py --tiny --compare before.json    # after: what changed (exit 1 if any)
    python scripts/behaviour_check.py --out before.json               # every experiment, 2 epochs each (long)
    python scripts/behaviour_check.py --only peeky_addition,rnnlm_ptb --out quick.json

--tiny trains a tiny run of each model family and task (addition with each decoder, a language model, word
pairs, programs, captions, chitchat) on one thread, and records for each its final metrics, its answers to a
few inputs through seq2seq.load and a digest of its weights. Compared on the machine (processor and torch)
that wrote the reference, everything must be bit for bit the same; elsewhere float rounding differs (AVX2 and
AVX-512 sum in other orders, and a tiny model's training amplifies it), so losses must agree to REL_TOL,
counted metrics (accuracies, BLEU) to COUNT_TOL and most answers (ANSWERS) exactly, and the weights are not
compared: what a change of behaviour moves (an initialisation, a data order) moves far more. CI runs
`--tiny --compare scripts/behaviour_reference.json`.

Experiments whose epochs take minutes on a CPU run a fixed number of steps instead (SHORT below).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # one fixed count: the numbers do not depend on the machine's load

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

import seq2seq
from seq2seq.training.config import CONFIG_DIR
from seq2seq.training.loop import train

REL_TOL = 2e-3  # losses and perplexities, on another machine than the reference's
COUNT_TOL = 0.05  # accuracies and BLEU (counts of right answers or tokens), likewise
ANSWERS = 0.75  # the share of a run's answers that must be the same, likewise
REFERENCE = Path(__file__).with_name("behaviour_reference.json")

# Experiments cut to a number of steps (and a validation subset), not 2 epochs.
SHORT = {
    "better_rnnlm_ptb": ["trainer.max_steps=100", "task.eval_limit=20000"],
    "chitchat": ["trainer.max_steps=300"],
    "programs_hard": ["trainer.max_steps=300"],
}

QUICK = ["trainer.progress=false", "trainer.device=cpu"]
ADDITION = ["debug=tiny", "model.wordvec_size=16", "model.hidden_size=64", "optimizer.lr=0.01", "trainer.max_epochs=8"]
QUESTIONS = ["1+1", "12+34", "99+9", "5+50", "31+7"]


def tiny_cases(data: Path) -> dict[str, tuple[list[str], list[str] | str]]:
    """{case: (overrides, inputs to answer)}: a tiny run of every family and task, its data written into `data`."""
    corpus = data / "ptb"
    corpus.mkdir()
    for split, n in (("train", 40), ("valid", 8), ("test", 8)):
        (corpus / f"ptb.{split}.txt").write_text(" the cat sat on the mat \n N dogs <unk> ran far \n" * n)
    pairs = data / "reverse.tsv"
    words = [" ".join("abcdef"[(i * 7 + j * 3) % 6] for j in range(1 + i % 4)) for i in range(400)]
    pairs.write_text("".join(f"{w}\t{' '.join(reversed(w.split()))}\n" for w in words))
    lm = ["task.batch_size=2", "task.time_size=5", "task.eval_batch_size=2", "model.wordvec_size=8",
          "model.hidden_size=8", "trainer.max_epochs=1"]  # fmt: skip
    small = ["model.wordvec_size=8", "model.hidden_size=16", "trainer.max_steps=20", "task.eval_limit=50"]
    return {
        "addition_plain": ([*ADDITION], QUESTIONS),
        "addition_peeky_reversed": ([*ADDITION, "experiment=peeky_addition"], QUESTIONS),
        "addition_attention": ([*ADDITION, "experiment=attention_addition"], QUESTIONS),
        "addition_bidirectional": ([*ADDITION, "model.bidirectional=true"], QUESTIONS),
        "rnnlm": (["experiment=rnnlm_ptb", f"task.data_dir={corpus}", *lm], "the cat"),
        "better_rnnlm": (
            ["experiment=better_rnnlm_ptb", f"task.data_dir={corpus}", *lm, "model.wordvec_size=8"],
            "the cat",
        ),
        "pairs_attention": (
            ["task=pairs", f"task.train={pairs}", "model.decoder=attention", "task.batch_size=16", *small],
            ["a b c", "f e"],
        ),
        "programs_peeky": (
            ["experiment=programs_easy", "task.num_examples=300", "task.batch_size=16", *small],
            ["print(1+2)"],
        ),
        "captions": (
            ["experiment=captions", "task.num_train=200", "task.num_val=40", "task.batch_size=16", *small],
            [],
        ),
        "chitchat": (["experiment=chitchat", "task.batch_size=16", *small], ["hi !", "how are you ?"]),
    }


def digest(path: Path) -> str:
    """The weights of a run's best model, as a digest of their bytes in name order."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def compose_run(overrides: list[str], out: Path):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def run_tiny(case: str, overrides: list[str], inputs, out: Path) -> dict:
    metrics = train(compose_run([*QUICK, *overrides], out / case))
    model = seq2seq.load(out / case, device="cpu")
    if model.family == "lm":
        answers = model.generate(inputs, max_new_tokens=8, strategy="greedy")
    else:
        answers = model.generate(inputs) if inputs else []
    return {"metrics": metrics, "answers": answers, "weights": digest(out / case / "best.pt")}


def run(experiment: str, out: Path) -> dict:
    overrides = [f"experiment={experiment}", "trainer.max_epochs=2", "trainer.progress=false"]
    started = time.perf_counter()
    metrics = train(compose_run(overrides + SHORT.get(experiment, []), out / experiment))
    return {**metrics, "seconds": time.perf_counter() - started}


def machine() -> dict:
    import torch

    from seq2seq.training.precision import machine as info

    return {k: v for k, v in info().items() if k != "threads"} | {"torch": torch.__version__}


def close(key: str, a, b, exact: bool) -> bool:
    if exact or not (isinstance(a, float) and isinstance(b, float)):
        return a == b
    if key.rsplit("/", 1)[-1] in ("loss", "ppl"):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)
    return abs(a - b) <= COUNT_TOL * max(1.0, abs(a)) if "bleu" in key else abs(a - b) <= COUNT_TOL


def same_answers(a, b, exact: bool) -> bool:
    if exact or not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b) or not a:
        return a == b
    return sum(x == y for x, y in zip(a, b, strict=True)) >= ANSWERS * len(a)


def differences(before: dict, after: dict, exact: bool = True) -> list[str]:
    """What differs (timings aside), as lines: everything bit for bit when `exact` (the reference's machine),
    else metrics to REL_TOL and COUNT_TOL and most answers, and no weights."""
    lines = []
    runs_before, runs_after = before.get("runs", before), after.get("runs", after)
    for case in sorted(set(runs_before) | set(runs_after)):
        if case not in runs_before or case not in runs_after:
            lines.append(f"{case}: only in the {'reference' if case in runs_before else 'new results'}")
            continue
        a, b = runs_before[case], runs_after[case]
        metrics_a, metrics_b = a.get("metrics", a), b.get("metrics", b)
        for key in sorted(set(metrics_a) | set(metrics_b)):
            if key.endswith("time") or key == "seconds":
                continue
            if not close(key, metrics_a.get(key), metrics_b.get(key), exact):
                lines.append(f"{case}: {key} {metrics_a.get(key)} -> {metrics_b.get(key)}")
        if not same_answers(a.get("answers"), b.get("answers"), exact):
            lines.append(f"{case}: answers {a.get('answers')} -> {b.get('answers')}")
        if exact and a.get("weights") != b.get("weights"):
            lines.append(f"{case}: weights {a.get('weights')} -> {b.get('weights')}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny runs of every family (seconds each)")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--only", help="comma-separated experiments or tiny cases (default: every one)")
    parser.add_argument("--compare", type=Path, help="an earlier --out file: print what changed (exit 1 if any)")
    args = parser.parse_args()
    if not (args.out or args.compare):
        parser.error("give --out, --compare or both")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            cases = tiny_cases(Path(tmp))
            names = [c for c in cases if not args.only or c in args.only.split(",")]
            for case in names:
                results[case] = run_tiny(case, *cases[case], Path(tmp))
                print(f"{case}: {results[case]}", flush=True)
        else:
            experiments = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
            for experiment in [e for e in experiments if not args.only or e in args.only.split(",")]:
                results[experiment] = run(experiment, Path(tmp))
                print(f"{experiment}: {results[experiment]}", flush=True)
    report = {"machine": machine(), "runs": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    if args.compare:
        reference = json.loads(args.compare.read_text())
        if args.only:  # the cases run, not the whole reference
            reference["runs"] = {k: v for k, v in reference.get("runs", {}).items() if k in results}
        exact = reference.get("machine") == report["machine"]
        changed = differences(reference, report, exact)
        how = (
            "bit for bit (the reference's machine)"
            if exact
            else f"to {REL_TOL:g} (another machine than the reference's)"
        )
        print("\n".join(changed) if changed else f"behaviour unchanged, {how}")
        sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
