"""The explorer: a local web page over the runs under a folder (`python -m seq2seq.explore`, see
seq2seq.explore.app). `runs` reads the runs (no model loaded), `analysis` computes what the tabs show (torch,
no web), `app` draws the page (Gradio)."""
