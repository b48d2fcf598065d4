#!/usr/bin/env bash
# Reproduce the README's results: the three chapter experiments on addition (25 epochs each) as one
# sweep and their val/acc plot, the 4-epoch Rnnlm on Penn Treebank, the attention decoder on addition
# (natural and reversed input), fast_addition, the program-execution levels (three models each), the
# chitchat chatbot and digit captioning. About 1.5 hours on 2 idle CPU cores for "all". Words after the
# first are overrides given to every training (e.g. seed=1 trainer.max_epochs=5); everything is written under
# outputs/reproduce/, figures included.
# "families" trains Peeky with each recurrent cell (LSTM, GRU, RNN; the GRU also with scheduler=onecycle) and the
# Transformer on addition; "families_ptb" rnnlm with each cell (the RNN also at learning rate 5) and the
# Transformer LM on Penn Treebank.
#   bash scripts/reproduce.sh [addition|ptb|attention|fast|programs|chitchat|captions|families|families_ptb|all] \
#     [key=value ...]
set -euo pipefail
what="${1:-all}"
shift || true
extra=("$@")
stamp=$(date +%Y-%m-%d_%H-%M-%S)
out="outputs/reproduce"

if [[ "$what" == addition || "$what" == all ]]; then
  python -m seq2seq.train -m experiment=baseline_addition,reverse_addition,peeky_addition \
    trainer.progress=false "${extra[@]}" hydra.sweep.dir="$out/addition_$stamp"
  python -m seq2seq.plot "$out/addition_$stamp" --out "$out/addition_$stamp/val_acc.png" --table --label name \
    --title "addition: exact-match accuracy on 5,000 validation questions"
fi
if [[ "$what" == ptb || "$what" == all ]]; then
  python -m seq2seq.train experiment=rnnlm_ptb trainer.progress=false "${extra[@]}" hydra.run.dir="$out/rnnlm_ptb_$stamp"
fi
if [[ "$what" == attention || "$what" == all ]]; then
  python -m seq2seq.train -m experiment=attention_addition task.reverse=false,true trainer.progress=false "${extra[@]}" \
    hydra.sweep.dir="$out/attention_$stamp"
  python -m seq2seq.plot "$out/attention_$stamp" --out "$out/attention_$stamp/val_acc.png" --table
fi
if [[ "$what" == fast || "$what" == all ]]; then
  python -m seq2seq.train experiment=fast_addition trainer.progress=false "${extra[@]}" hydra.run.dir="$out/fast_addition_$stamp"
  python -m seq2seq.plot "$out/fast_addition_$stamp" --x time --out "$out/fast_addition_$stamp/val_acc.png" --table
fi
if [[ "$what" == programs || "$what" == all ]]; then
  levels=programs_easy,programs_hard
  python -m seq2seq.train -m experiment=$levels model.decoder=plain task.reverse=false trainer.progress=false "${extra[@]}" \
    hydra.sweep.dir="$out/programs_$stamp/baseline"
  python -m seq2seq.train -m experiment=$levels trainer.progress=false "${extra[@]}" hydra.sweep.dir="$out/programs_$stamp/peeky"
  python -m seq2seq.train -m experiment=$levels model.decoder=attention task.reverse=false trainer.progress=false "${extra[@]}" \
    hydra.sweep.dir="$out/programs_$stamp/attention"
  for variant in baseline peeky attention; do
    python -m seq2seq.plot "$out/programs_$stamp/$variant" --out "$out/programs_$stamp/$variant.png" --table
  done
fi
if [[ "$what" == chitchat || "$what" == all ]]; then
  python -m seq2seq.train experiment=chitchat trainer.progress=false "${extra[@]}" hydra.run.dir="$out/chitchat_$stamp"
  python -m seq2seq.chat checkpoint="$out/chitchat_$stamp" < docs/chat_prompts.txt
fi
if [[ "$what" == captions || "$what" == all ]]; then
  python -m seq2seq.train -m experiment=captions model.decoder=plain,peeky,attention trainer.progress=false "${extra[@]}" \
    hydra.sweep.dir="$out/captions_$stamp"
  python -m seq2seq.plot "$out/captions_$stamp" --out "$out/captions_$stamp/val_acc.png" --table
fi
if [[ "$what" == families || "$what" == all ]]; then
  python -m seq2seq.train -m experiment=peeky_addition model.cell=lstm,gru,rnn trainer.progress=false "${extra[@]}" \
    hydra.sweep.dir="$out/families_$stamp/cells"
  python -m seq2seq.train experiment=peeky_addition model.cell=gru scheduler=onecycle trainer.progress=false \
    "${extra[@]}" hydra.run.dir="$out/families_$stamp/gru_onecycle"
  python -m seq2seq.train experiment=transformer_addition trainer.progress=false "${extra[@]}" \
    hydra.run.dir="$out/families_$stamp/transformer"
  python -m seq2seq.plot "$out/families_$stamp" --out "$out/families_$stamp/val_acc.png" --table \
    --label name,model.cell,scheduler
fi
if [[ "$what" == families_ptb || "$what" == all ]]; then
  python -m seq2seq.train -m experiment=rnnlm_ptb model.cell=lstm,gru,rnn trainer.progress=false "${extra[@]}" \
    hydra.sweep.dir="$out/families_ptb_$stamp/cells"
  python -m seq2seq.train experiment=rnnlm_ptb model.cell=rnn optimizer.lr=5 trainer.progress=false "${extra[@]}" \
    hydra.run.dir="$out/families_ptb_$stamp/rnn_lr5"
  python -m seq2seq.train experiment=transformer_ptb trainer.progress=false "${extra[@]}" \
    hydra.run.dir="$out/families_ptb_$stamp/transformer"
  python -m seq2seq.plot "$out/families_ptb_$stamp" --tag val/ppl --out "$out/families_ptb_$stamp/val_ppl.png" --table \
    --label name,model.cell,optimizer.lr
fi
