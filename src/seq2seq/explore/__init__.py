"""The explorer: a local web page over the runs under a folder (`python -m seq2seq.explore`): `runs` reads the
runs (no model loaded), `analysis` computes what the tabs show (torch, no web), `app` answers the page's
requests, `page` lays the page out and serves it (Gradio). Imports: seq2seq.core, data, models, tasks,
training, inference; the command line around it is seq2seq.cli.explore."""
