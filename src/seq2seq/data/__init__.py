"""The data the tasks read, as plain Python values: the addition toy's file format and generator, Penn Treebank,
TSV pairs and their tokenisers, the chitchat corpus, generated programs, digit images, vocabularies, and what a
model's inputs may be (questions). Imports: seq2seq.core only; torch only where a reader makes tensors."""
