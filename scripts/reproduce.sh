#!/usr/bin/env bash
# Reproduce the README's results tables: the three addition experiments (25 epochs each) as one
# sweep, their val/acc plot, and the 4-epoch Rnnlm on Penn Treebank. About 10 minutes on 2 CPU cores.
#   bash scripts/reproduce.sh [addition|ptb|all]
set -euo pipefail
what="${1:-all}"
stamp=$(date +%Y-%m-%d_%H-%M-%S)

if [[ "$what" == addition || "$what" == all ]]; then
  python -m seq2seq.train -m experiment=baseline_addition,reverse_addition,peeky_addition \
    trainer.progress=false hydra.sweep.dir="outputs/reproduce/addition_$stamp"
  python scripts/plot_curves.py "outputs/reproduce/addition_$stamp" --out docs/addition_val_acc.png \
    --title "addition: exact-match accuracy on 5,000 validation questions"
fi
if [[ "$what" == ptb || "$what" == all ]]; then
  python -m seq2seq.train experiment=rnnlm_ptb trainer.progress=false \
    hydra.run.dir="outputs/reproduce/rnnlm_ptb_$stamp"
fi
