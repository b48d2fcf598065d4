"""The console entry points (`python -m seq2seq.<command>`, `seq2seq-<command>`): Hydra wiring, checks of the
command line and one-line errors only; each command's work is in the packages below it. common holds what the
command lines share. Imports: every other package."""
