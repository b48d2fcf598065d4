"""Short runs of every experiment at its default seed, their final metrics written as JSON: run it before
and after a refactor and compare, so that "behaviour unchanged" is a measured claim.

    python scripts/behaviour_check.py --out before.json              # every experiment, 2 epochs each
    python scripts/behaviour_check.py --out after.json --compare before.json
    python scripts/behaviour_check.py --only peeky_addition,rnnlm_ptb --out quick.json

Experiments whose epochs take minutes on a CPU run a fixed number of steps instead (SHORT below).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from seq2seq.config import CONFIG_DIR
from seq2seq.train import train

# Experiments cut to a number of steps (and a validation subset), not 2 epochs.
SHORT = {
    "better_rnnlm_ptb": ["trainer.max_steps=100", "task.eval_limit=20000"],
    "chitchat": ["trainer.max_steps=300"],
    "programs_hard": ["trainer.max_steps=300"],
}


def run(experiment: str, out: Path) -> dict:
    overrides = [f"experiment={experiment}", "trainer.max_epochs=2", "trainer.progress=false"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides + SHORT.get(experiment, []))
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / experiment)
    started = time.perf_counter()
    metrics = train(cfg)
    return {**metrics, "seconds": time.perf_counter() - started}


def differences(before: dict, after: dict) -> list[str]:
    """Metrics that differ (timings aside), as lines."""
    lines = []
    for experiment in sorted(set(before) & set(after)):
        for key in sorted(set(before[experiment]) | set(after[experiment])):
            if key.endswith("time") or key == "seconds":
                continue
            a, b = before[experiment].get(key), after[experiment].get(key)
            if a != b:  # bit for bit: the same seed must give the same numbers
                lines.append(f"{experiment}: {key} {a} -> {b}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--only", help="comma-separated experiments (default: every one)")
    parser.add_argument("--compare", type=Path, help="an earlier --out file: print what changed")
    args = parser.parse_args()
    experiments = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
    if args.only:
        experiments = [e for e in experiments if e in args.only.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in experiments:
            results[experiment] = run(experiment, Path(tmp))
            print(f"{experiment}: {results[experiment]}", flush=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True))
    if args.compare:
        changed = differences(json.loads(args.compare.read_text()), results)
        print("\n".join(changed) if changed else "every metric unchanged (timings aside)")
        sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
