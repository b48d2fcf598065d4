"""The explorer's page (Gradio): five tabs over the runs under a root folder.

    Runs     the runs table, filterable; the val/ curves of the chosen runs; a click opens a run in the other tabs
    Ask      a question answered by one to three seq2seq runs side by side: the top next tokens of each step,
             beam search's n-best list, an attention model's heatmap
    Errors   exact match on the validation split by question length, answer digits and carries; the wrong
             answers; two runs compared question by question
    Sample   a language model's text, each word shaded by its probability; the top next words at a clicked
             word; the perplexity of a sentence
    Chat     a conversation with a pair or chitchat model, with the context rules of seq2seq-chat

Every handler returns its outputs and, last, the tab's message: a mistake of the user's (a question in
the wrong shape, an option out of range, a path outside the root) is shown there in one line, never as a
traceback. Models are loaded through seq2seq.load (its checks and refusals) and cached, at most `cache`.
"""

import contextlib
import functools
import html
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from seq2seq import checkpoint as ckpt
from seq2seq import decoding
from seq2seq.chat import Chat
from seq2seq.errors import DataError, Seq2seqError
from seq2seq.explore import analysis
from seq2seq.explore.runs import COLUMNS, Runs
from seq2seq.extras import require
from seq2seq.plots import visible

log = logging.getLogger(__name__)
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported: no request leaves the machine

PLOTTED = 10  # runs drawn in one plot
SHOWN_ROWS = 500  # wrong answers and compared questions listed
ANSWER_COLUMNS = 3  # runs side by side in Ask
# The decoding options the page offers (seq2seq.decoding; `skip` keeps each family's default).
OPTION_FIELDS = (
    "max_new_tokens",
    "repetition_penalty",
    "beam_size",
    "n_best",
    "length_penalty",
    "num_samples",
    "temperature",
    "top_k",
    "top_p",
    "seed",
)

CSS = """
.s2s-steps td, .s2s-steps th, .s2s-heatmap td, .s2s-heatmap th {padding: 2px 6px; font-family: ui-monospace, monospace;
  font-size: 13px; text-align: center}
.s2s-heatmap td {min-width: 22px}
.s2s-answer-text {font-size: 20px; font-family: ui-monospace, monospace}
"""


class Explorer:
    """The runs under `root`, the models loaded from them (an LRU cache of `cache` models) and their
    validation answers. Handlers run in Gradio's worker threads: the caches are shared under a lock."""

    def __init__(self, root: str | Path, device: str | None = None, cache: int = 6):
        if not isinstance(cache, int) or not 1 <= cache <= 100:
            raise DataError(f"cache={cache}: must be from 1 to 100 models")
        self.runs = Runs(root)
        self.device, self.cache = device, cache
        self.models: OrderedDict = OrderedDict()
        self.validations: OrderedDict = OrderedDict()
        self.tasks: OrderedDict = OrderedDict()  # rebuilt tasks, by their config
        self.lock = threading.Lock()

    def remember(self, store: OrderedDict, key, make):
        with self.lock:
            if key in store:
                store.move_to_end(key)
                return store[key]
        value = make()
        with self.lock:
            store[key] = value
            while len(store) > self.cache:
                store.popitem(last=False)
        return value

    def file(self, value: str) -> tuple[Path, tuple]:
        """The checkpoint file (or shared folder) of the run `value` names under the root, and its cache key."""
        path = self.runs.path(value)
        file, _ = ckpt.find(path, "best.pt")
        if not file.resolve().is_relative_to(self.runs.root):  # a best.pt linking out of the root
            raise DataError(f"{value[:200]}: its checkpoint lies outside {self.runs.root}")
        return file, (str(file.resolve()), file.stat().st_mtime_ns)

    def model(self, value: str, family: str | None = None):
        """The model of the run (or checkpoint, or shared folder) `value` names under the root."""
        import seq2seq

        file, key = self.file(value)
        model = self.remember(self.models, key, lambda: seq2seq.load(file, device=self.device))
        if family == "lm" and model.family != "lm":
            raise DataError(f"{value}: a {model.family} model; this tab samples language models (e.g. rnnlm_ptb)")
        if family == "seq2seq" and model.family != "seq2seq":
            raise DataError(f"{value}: a {model.family} model; this tab takes text seq2seq models (e.g. addition)")
        return model

    def validation(self, value: str) -> analysis.Validation:
        """The greedy answers to a run's validation split; runs of the same data share its rebuilt task."""
        model = self.model(value, "seq2seq")
        node = model.config.get("task") if isinstance(model.config, dict) else None
        task_key = json.dumps(node, sort_keys=True, default=str)
        task = self.remember(self.tasks, task_key, lambda: analysis.validation_task(model))
        return self.remember(self.validations, self.file(value)[1], lambda: analysis.validate(model, task))


def number(name: str, value: str):
    """A decoding field's text as the number it spells (an int where it has no point or exponent)."""
    try:
        return int(value) if value.lstrip("+-").isdigit() else float(value)
    except ValueError:
        raise DataError(f"{name}={value[:40]!r}: not a number") from None


def options_of(strategy: str | None, values) -> dict:
    """The page's decoding fields as options: those of the chosen strategy that are filled in (blank: the
    model's default); their ranges are checked by seq2seq.decoding, as for seq2seq-generate."""
    options = {"strategy": strategy or None}
    for name, value in zip(OPTION_FIELDS, values, strict=True):
        value = (value or "").strip() if isinstance(value, str | type(None)) else str(value)
        if value and decoding.ONLY_FOR.get(name, strategy) == strategy:
            options[name] = number(name, value)
    return options


def message(error: Exception) -> str:
    return f"**error:** {html.escape(str(error))}"


def handler(outputs: int):
    """A page handler with `outputs` outputs, the last its tab's message: a user's mistake becomes that
    message, anything else a one-line message too (its traceback goes to the terminal)."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            import gradio as gr

            try:
                return fn(*args, **kwargs)
            except Seq2seqError as e:
                shown = message(e)
            except Exception as e:  # a bug, not the user's: one line here, the details in the terminal
                log.exception("explorer: %s failed", fn.__name__)
                what = f"{type(e).__name__}: {html.escape(str(e)[:200])}"
                shown = f"**unexpected error** ({what}); details in the terminal"
            return (*[gr.skip()] * (outputs - 1), shown)

        return run

    return wrap


# ---- drawing ---------------------------------------------------------------------------------------


def shade(weight: float) -> str:
    return f"background: rgba(234, 88, 12, {max(0.0, min(1.0, weight)):.3f})"


def answer_html(run: str, question: str, answer: analysis.Answer, seconds: float) -> str:
    e = html.escape
    parts = [
        f"<div class='s2s-answer' data-run='{e(run)}' data-question='{e(question)}'><b>{e(run)}</b>",
        f"<div class='s2s-answer-text'>{e(answer.text) or '&nbsp;'}</div>",
    ]
    if answer.nbest:
        rows = "".join(
            f"<tr><td>{n}</td><td>{e(t)}</td><td>{s:.4f}</td></tr>" for n, (t, s) in enumerate(answer.nbest, 1)
        )
        parts.append(f"<table class='s2s-nbest'><tr><th>#</th><th>output</th><th>score</th></tr>{rows}</table>")
    if answer.samples:
        parts.append("<ol class='s2s-samples'>" + "".join(f"<li>{e(t)}</li>" for t in answer.samples) + "</ol>")
    header = "".join(f"<th>top {k}</th>" for k in range(1, analysis.TOP_STEPS + 1))
    rows = []
    for t, step in enumerate(answer.steps, 1):
        cells = "".join(f"<td style='{shade(p)}'>{e(visible(tok))} {p:.2f}</td>" for tok, p in step.top)
        rows.append(f"<tr><td>{t}</td><td><b>{e(visible(step.token))}</b> {step.prob:.3f}</td>{cells}</tr>")
    parts.append(f"<table class='s2s-steps'><tr><th>step</th><th>emitted</th>{header}</tr>{''.join(rows)}</table>")
    if answer.attention is not None:
        top = "".join(f"<th>{e(visible(s))}</th>" for s in answer.source)
        rows = [
            f"<tr><th>{e(visible(step.token))}</th>"
            + "".join(f"<td style='{shade(w)}' title='{w:.3f}'></td>" for w in weights)
            + "</tr>"
            for step, weights in zip(answer.steps, answer.attention, strict=True)
        ]
        parts.append(
            f"<div><small>attention: each output step (row) over the source as fed to the encoder "
            f"(columns)</small></div><table class='s2s-heatmap'><tr><th></th>{top}</tr>{''.join(rows)}</table>"
        )
    parts.append(f"<small>{seconds * 1000:.0f} ms</small></div>")
    return "".join(parts)


# ---- the page --------------------------------------------------------------------------------------


def build(explorer: Explorer):
    """The Gradio Blocks of the five tabs over `explorer`'s runs."""
    gr = require("gradio", "seq2seq-explore")
    import pandas as pd

    def choices(kinds: tuple[str, ...]) -> list[str]:
        return [run.id for run in explorer.runs.runs.values() if run.kind in kinds]

    def filtered(text: str) -> list:
        text = (text or "").strip().lower()
        rows = [run.row() for run in explorer.runs.runs.values()]
        return [row for row in rows if not text or text in " ".join(map(str, row)).lower()]

    def curves(selected: list[str], metric: str | None, rows: list):
        ids = list(selected or []) or [row[0] for row in rows][:PLOTTED]
        runs = [explorer.runs.runs[i] for i in ids if i in explorer.runs.runs][:PLOTTED]
        metrics = sorted({tag for run in runs for tag in run.curves})
        if metric not in metrics:
            usual = [m for m in ("val/acc", "val/ppl", "val/loss") if m in metrics]
            metric = (usual or metrics or [None])[0]
        points = [(step, value, run.id) for run in runs for step, value in run.curves.get(metric, [])]
        frame = pd.DataFrame(points, columns=["epoch", "value", "run"])
        return gr.update(value=frame, y_title=metric or "value"), gr.update(choices=metrics, value=metric)

    with gr.Blocks(title="seq2seq explorer", analytics_enabled=False) as demo:
        gr.Markdown(f"### seq2seq explorer: the runs under `{explorer.runs.root}`")
        with gr.Tabs():
            # ---- Runs
            with gr.Tab("Runs", id="runs"):
                with gr.Row():
                    runs_filter = gr.Textbox(
                        label="filter", placeholder="experiment, override, status...", elem_id="runs-filter", scale=4
                    )
                    refresh = gr.Button("Refresh", elem_id="runs-refresh", scale=1)
                table = gr.Dataframe(
                    headers=COLUMNS,
                    interactive=False,
                    elem_id="runs-table",
                    wrap=True,
                    column_widths=["20%", "12%", "7%", "6%", "6%", "8%", "4%", "10%", "27%"],
                )
                with gr.Row():
                    plotted = gr.Dropdown(
                        [],
                        multiselect=True,
                        label=f"runs plotted (a click on a row adds it; none: the first {PLOTTED} rows)",
                        elem_id="runs-plotted",
                        scale=4,
                    )
                    metric = gr.Dropdown([], label="metric", elem_id="runs-metric", scale=1)
                plot = gr.LinePlot(x="epoch", y="value", color="run", elem_id="runs-curves", height=320)
                runs_message = gr.Markdown(elem_id="runs-message")
            # ---- Ask
            with gr.Tab("Ask", id="ask"):
                with gr.Row():
                    ask_runs = [
                        gr.Dropdown([], label=f"run {n + 1}", allow_custom_value=True, elem_id=f"ask-run-{n}")
                        for n in range(ANSWER_COLUMNS)
                    ]
                with gr.Row():
                    question = gr.Textbox(
                        label="question",
                        placeholder="16+75",
                        elem_id="ask-question",
                        scale=4,
                        max_length=analysis.MAX_TEXT,
                    )
                    ask_button = gr.Button("Ask", variant="primary", elem_id="ask-button", scale=1)
                ask_strategy, ask_options = decoding_fields(gr, "ask")
                ask_message = gr.Markdown(elem_id="ask-message")
                with gr.Row():
                    ask_outputs = [gr.HTML(elem_id=f"ask-out-{n}") for n in range(ANSWER_COLUMNS)]
            # ---- Errors
            with gr.Tab("Errors", id="errors"):
                with gr.Row():
                    errors_a = gr.Dropdown([], label="run", allow_custom_value=True, elem_id="errors-run-a")
                    errors_b = gr.Dropdown(
                        [], label="compared with (optional)", allow_custom_value=True, elem_id="errors-run-b"
                    )
                    errors_button = gr.Button("Check the validation split", variant="primary", elem_id="errors-button")
                errors_message = gr.Markdown(elem_id="errors-message")
                errors_summary = gr.Markdown(elem_id="errors-summary")
                with gr.Row():
                    breakdowns = [
                        gr.Dataframe(
                            headers=["group", "questions", "right", "accuracy"],
                            interactive=False,
                            elem_id=f"errors-by-{n}",
                            visible=False,
                        )
                        for n in range(3)
                    ]
                wrong = gr.Dataframe(
                    headers=["question", "expected", "answered"],
                    interactive=False,
                    label="wrong answers",
                    elem_id="errors-wrong",
                )
                compared = gr.Dataframe(
                    headers=["question", "expected", "run", "compared run"],
                    interactive=False,
                    label="right in one run, wrong in the other",
                    elem_id="errors-compared",
                )
            # ---- Sample
            with gr.Tab("Sample", id="sample"):
                with gr.Row():
                    sample_run = gr.Dropdown(
                        [], label="language model run", allow_custom_value=True, elem_id="sample-run"
                    )
                    prompt = gr.Textbox(
                        label="prompt",
                        value="the meaning of life is",
                        elem_id="sample-prompt",
                        max_length=analysis.MAX_TEXT,
                        scale=3,
                    )
                    sample_button = gr.Button("Sample", variant="primary", elem_id="sample-button")
                sample_strategy, sample_options = decoding_fields(gr, "sample")
                sample_message = gr.Markdown(elem_id="sample-message")
                sample_text = gr.HighlightedText(
                    label="text: each word shaded by the probability the model gave it "
                    "(click a word for the words it considered there)",
                    elem_id="sample-text",
                    combine_adjacent=False,
                )
                sample_plain = gr.Textbox(
                    label="the text as seq2seq-generate prints it", elem_id="sample-plain", interactive=False, lines=2
                )
                sample_state = gr.State(None)
                next_table = gr.Dataframe(
                    headers=["next word", "probability"],
                    interactive=False,
                    label="top next words at the clicked word",
                    elem_id="sample-next",
                )
                with gr.Row():
                    sentence = gr.Textbox(
                        label="a sentence to score", elem_id="sample-sentence", scale=4, max_length=analysis.MAX_TEXT
                    )
                    ppl_button = gr.Button("Perplexity", elem_id="sample-ppl-button")
                ppl_out = gr.Markdown(elem_id="sample-ppl")
            # ---- Chat
            with gr.Tab("Chat", id="chat"):
                chat_run = gr.Dropdown([], label="pair or chitchat run", allow_custom_value=True, elem_id="chat-run")
                chatbot = gr.Chatbot(elem_id="chat-box", height=320)
                with gr.Row():
                    chat_text = gr.Textbox(label="message", elem_id="chat-text", scale=4, max_length=analysis.MAX_TEXT)
                    chat_send = gr.Button("Send", variant="primary", elem_id="chat-send")
                    chat_reset = gr.Button("Reset", elem_id="chat-reset")
                chat_message = gr.Markdown(elem_id="chat-message")
                chat_state = gr.State([])

        # ---- Runs handlers
        selectors = (*ask_runs, errors_a, errors_b, sample_run, chat_run)
        selector_kinds = [("addition", "pairs")] * (ANSWER_COLUMNS + 2) + [("lm",), ("pairs",)]

        @handler(5 + len(selectors))
        def scan(text, selected, chosen_metric):
            explorer.runs.scan()
            rows = filtered(text)
            known = [s for s in (selected or []) if s in explorer.runs.runs]
            plot_update, metric_update = curves(known, chosen_metric, rows)
            updates = [gr.update(choices=choices(kinds)) for kinds in selector_kinds]
            note = f"{len(explorer.runs.runs)} runs under {explorer.runs.root}" if rows else "no runs found"
            return (
                rows,
                gr.update(choices=list(explorer.runs.runs), value=known),
                plot_update,
                metric_update,
                *updates,
                note,
            )

        scan_outputs = [table, plotted, plot, metric, *selectors, runs_message]
        demo.load(scan, [runs_filter, plotted, metric], scan_outputs)
        refresh.click(scan, [runs_filter, plotted, metric], scan_outputs)

        @handler(4)
        def refilter(text, selected, chosen_metric):
            rows = filtered(text)
            plot_update, metric_update = curves(selected, chosen_metric, rows)
            return rows, plot_update, metric_update, ""

        runs_filter.change(refilter, [runs_filter, plotted, metric], [table, plot, metric, runs_message])
        plotted.change(refilter, [runs_filter, plotted, metric], [table, plot, metric, runs_message])
        metric.input(refilter, [runs_filter, plotted, metric], [table, plot, metric, runs_message])

        tab_of = {ask_runs[0]: "Ask", errors_a: "Errors", sample_run: "Sample", chat_run: "Chat"}  # where a click opens

        @handler(2 + len(selectors))
        def open_run(selected, evt: gr.SelectData):
            run = explorer.runs.get(str(evt.row_value[0]))
            selected = list(dict.fromkeys([*(selected or []), run.id]))[-PLOTTED:]
            opens = [c in tab_of and run.kind in kinds for c, kinds in zip(selectors, selector_kinds, strict=True)]
            updates = [gr.update(value=run.id) if yes else gr.skip() for yes in opens]
            where = ", ".join(tab_of[c] for c, yes in zip(selectors, opens, strict=True) if yes)
            return (selected, *updates, f"opened `{run.id}` in {where or 'no tab (a kind of model not explored here)'}")

        table.select(open_run, [plotted], [plotted, *selectors, runs_message])

        # ---- Ask handlers
        @handler(ANSWER_COLUMNS + 1)
        def answer(question_text, *values):
            runs, strategy, fields = values[:ANSWER_COLUMNS], values[ANSWER_COLUMNS], values[ANSWER_COLUMNS + 1 :]
            chosen = [(n, r) for n, r in enumerate(runs) if r]
            if not chosen:
                raise DataError("choose a run (run 1) first")
            options = options_of(strategy, fields)
            analysis.check_text(question_text, "question")
            outputs = [""] * ANSWER_COLUMNS
            for n, run in chosen:
                model = explorer.model(run, "seq2seq")
                start = time.perf_counter()
                try:
                    result = analysis.ask(model, question_text, options)
                except Seq2seqError as e:
                    raise DataError(f"{run}: {e}") from None
                outputs[n] = answer_html(run, question_text, result, time.perf_counter() - start)
            return (*outputs, "")

        ask_inputs = [question, *ask_runs, ask_strategy, *ask_options]
        for trigger in (ask_button.click, question.submit):
            trigger(answer, ask_inputs, [*ask_outputs, ask_message])

        # ---- Errors handlers
        @handler(len(breakdowns) + 4)
        def check(run_a, run_b):
            if not run_a:
                raise DataError("choose a run first")
            start = time.perf_counter()
            a = explorer.validation(run_a)
            seconds = time.perf_counter() - start
            tables = [gr.update(value=a.breakdown(name), label=f"by {name}", visible=True) for name in a.groups]
            tables += [gr.update(visible=False)] * (len(breakdowns) - len(tables))
            wrong_rows = [
                [q, x, y] for q, x, y, r in zip(a.questions, a.expected, a.answered, a.right, strict=True) if not r
            ]
            summary = (
                f"**{run_a}**: exact match **{a.accuracy:.4f}** on {len(a.right):,} validation questions "
                f"({len(wrong_rows):,} wrong; {seconds:.2f} s)"
            )
            both: list[list] = []
            if run_b:
                b = explorer.validation(run_b)
                only_a, only_b = analysis.compare(a, b)
                summary += (
                    f"  \n**{run_b}**: exact match **{b.accuracy:.4f}**; right only in the first run: "
                    f"**{len(only_a):,}**, right only in the second: **{len(only_b):,}**"
                )
                both = [[*r[:2], f"☑ {r[2]}", f"☒ {r[3]}"] for r in only_a] + [
                    [*r[:2], f"☒ {r[2]}", f"☑ {r[3]}"] for r in only_b
                ]
            return (summary, *tables, wrong_rows[:SHOWN_ROWS], both[:SHOWN_ROWS], "")

        errors_button.click(check, [errors_a, errors_b], [errors_summary, *breakdowns, wrong, compared, errors_message])

        # ---- Sample handlers
        @handler(5)
        def sample(run, prompt_text, strategy, *fields):
            if not run:
                raise DataError("choose a language model run first")
            model = explorer.model(run, "lm")
            result = analysis.sample(model, prompt_text, options_of(strategy, fields))
            pairs = zip(result.words, result.probs, strict=True)
            shaded = [(word + " ", None if p is None else round(p, 4)) for word, p in pairs]
            return shaded, model.words_text(result.ids), {"run": run, "ids": result.ids}, [], ""

        sample_inputs = [sample_run, prompt, sample_strategy, *sample_options]
        for trigger in (sample_button.click, prompt.submit):
            trigger(sample, sample_inputs, [sample_text, sample_plain, sample_state, next_table, sample_message])

        @handler(2)
        def clicked(state, evt: gr.SelectData):
            if not state:
                raise DataError("sample a text first")
            model = explorer.model(state["run"], "lm")
            top = analysis.next_words(model, state["ids"], evt.index)
            before = model.vocab.decode(state["ids"][: evt.index], sep=" ")[-80:]
            return [[w, round(p, 4)] for w, p in top], f"the words the model considered after “{before}”"

        sample_text.select(clicked, [sample_state], [next_table, sample_message])

        @handler(2)
        def score(run, text):
            if not run:
                raise DataError("choose a language model run first")
            ppl, probs = analysis.perplexity(explorer.model(run, "lm"), text)
            words = " ".join(f"{html.escape(w)}&nbsp;<sub>{p:.3g}</sub>" for w, p in probs)
            return f"perplexity **{ppl:.2f}** over {len(probs)} words: {words}", ""

        for trigger in (ppl_button.click, sentence.submit):
            trigger(score, [sample_run, sentence], [ppl_out, sample_message])

        # ---- Chat handlers
        @handler(4)
        def send(run, text, history, shown):
            if not run:
                raise DataError("choose a pair or chitchat run first")
            analysis.check_text(text, "message")
            chat = Chat(explorer.model(run, "seq2seq"), {})
            chat.history = list(history)
            reply = chat.reply(text)
            shown = [*(shown or []), {"role": "user", "content": text}, {"role": "assistant", "content": reply}]
            return shown, chat.history, "", ""

        for trigger in (chat_send.click, chat_text.submit):
            trigger(send, [chat_run, chat_text, chat_state, chatbot], [chatbot, chat_state, chat_text, chat_message])

        def reset():
            return [], [], "the conversation starts over"

        chat_reset.click(reset, None, [chatbot, chat_state, chat_message])
        chat_run.change(reset, None, [chatbot, chat_state, chat_message])
    return demo


def decoding_fields(gr, prefix: str):
    """The strategy and the decoding options of seq2seq.decoding, blank meaning the model's default; only
    the options of the chosen strategy are shown (and sent)."""
    with gr.Accordion("decoding options (blank: the model's default, as for seq2seq-generate)", open=False):
        strategy = gr.Radio(
            list(decoding.STRATEGIES),
            value=None,
            label="strategy (none chosen: the model's default)",
            elem_id=f"{prefix}-strategy",
        )
        with gr.Row():
            fields = [
                gr.Textbox(
                    label=name,
                    placeholder="default",
                    elem_id=f"{prefix}-{name}",
                    max_lines=1,
                    max_length=40,
                    visible=name not in decoding.ONLY_FOR,
                    min_width=120,
                )
                for name in OPTION_FIELDS
            ]

    def show(chosen):
        return [gr.update(visible=decoding.ONLY_FOR.get(name, chosen) == chosen) for name in OPTION_FIELDS]

    strategy.change(show, strategy, fields)
    return strategy, fields


def theme():
    """Gradio's default look with the system's fonts: the default theme loads its fonts from Google."""
    import gradio as gr

    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "SFMono-Regular", "monospace"]
    )


def launch(explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Serve the page on host:port (never a public share link); the URL. block=False returns at once
    (tests), with the server running in its own threads."""
    demo = build(explorer)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        ssr_mode=False,
        theme=theme(),
        css=CSS,
        footer_links=[],
    )
    if block:
        print(f"seq2seq explorer: {url} (runs under {explorer.runs.root}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            demo.block_thread()
    return demo, url
