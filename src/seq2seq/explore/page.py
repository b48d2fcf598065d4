"""The explorer's page (Gradio): one function per tab lays it out and connects its handlers.

    Runs     the runs table, filterable; the val/ curves of the chosen runs; a click opens a run in the other tabs
    Ask      a question answered by one to three seq2seq runs side by side: the top next tokens of each step,
             beam search's n-best list, an attention model's heatmap
    Errors   exact match on the validation split by question length, answer digits and carries; the wrong
             answers; two runs compared question by question
    Sample   a language model's text, each word shaded by its probability; the top next words at a clicked
             word; the perplexity of a sentence
    Chat     a conversation with a pair or chitchat model, with the context rules of seq2seq-chat

Every handler returns its outputs and, last, its tab's message (seq2seq.explore.app.handler).
"""

import html
import sys
import time
from types import SimpleNamespace

from seq2seq.core import decoding
from seq2seq.core.errors import DataError, Seq2seqError
from seq2seq.explore import analysis
from seq2seq.explore.app import OPTION_FIELDS, Explorer, handler, options_of, whole
from seq2seq.explore.runs import COLUMNS
from seq2seq.inference.chat import Chat
from seq2seq.tasks.plots import visible

PLOTTED = 10  # runs drawn in one plot
SHOWN_ROWS = 200  # wrong answers and compared questions listed (the summary counts them all)
ANSWER_COLUMNS = 3  # runs side by side in Ask
# The runs each tab takes, by their task state's kind (runs.Run.kind): text in, text out (fixed-width questions or
# token pairs); language models; conversations (token pairs).
SEQ2SEQ_KINDS, LM_KINDS, CHAT_KINDS = ("fixed_width", "token_pairs"), ("lm",), ("token_pairs",)

CSS = """
.s2s-steps td, .s2s-steps th, .s2s-heatmap td, .s2s-heatmap th {padding: 2px 6px; font-family: ui-monospace, monospace;
  font-size: 13px; text-align: center}
.s2s-heatmap td {min-width: 22px}
.s2s-answer-text {font-size: 20px; font-family: ui-monospace, monospace}
"""


# ---- drawing ---------------------------------------------------------------------------------------


def shade(weight: float) -> str:
    return f"background: rgba(234, 88, 12, {max(0.0, min(1.0, weight)):.3f})"


def answer_html(run: str, question: str, answer: analysis.Answer, seconds: float) -> str:
    """One run's answer: the text, beam search's n-best list or the samples, each step's top tokens,
    and an attention model's heatmap; every text escaped."""
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
        of = f" ({e(answer.attention_of)})" if answer.attention_of else ""
        parts.append(
            f"<div><small class='s2s-attention-of'>attention{of}: each output step (row) over the source as fed "
            f"to the encoder (columns)</small></div>"
            f"<table class='s2s-heatmap'><tr><th></th>{top}</tr>{''.join(rows)}</table>"
        )
    parts.append(f"<small>{seconds * 1000:.0f} ms</small></div>")
    return "".join(parts)


# ---- the tabs --------------------------------------------------------------------------------------


def decoding_fields(gr, prefix: str):
    """The strategy and the decoding options of seq2seq.core.decoding, blank meaning the model's default; only
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


def run_selector(gr, label: str, elem_id: str):
    """A run chosen from the runs of its tab's kind, or typed (any path under the root)."""
    return gr.Dropdown([], label=label, allow_custom_value=True, elem_id=elem_id)


def runs_tab(gr):
    """The runs table, its filter and the curves (connected by connect_runs, once the other tabs exist)."""
    with gr.Row():
        query = gr.Textbox(
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
            elem_id="runs-plotted",
            scale=4,
            label=f"runs plotted (a click on a row adds it; none: the first {PLOTTED} rows)",
        )
        metric = gr.Dropdown([], label="metric", elem_id="runs-metric", scale=1)
    plot = gr.LinePlot(x="epoch", y="value", color="run", elem_id="runs-curves", height=320)
    message = gr.Markdown(elem_id="runs-message")
    return SimpleNamespace(
        query=query, refresh=refresh, table=table, plotted=plotted, metric=metric, plot=plot, message=message
    )


def connect_runs(gr, demo, explorer: Explorer, ui, opens: dict):
    """The runs tab's handlers. `opens`: each tab's run selector -> (tab name, the run kinds it takes, whether a
    click on a row opens the run there)."""
    import pandas as pd

    runs = explorer.runs
    selectors = list(opens)

    def rows_of(query: str) -> list:
        query = (query or "").strip().lower()
        rows = [run.row() for run in runs.runs.values()]
        return [row for row in rows if not query or query in " ".join(map(str, row)).lower()]

    def curves(selected: list[str], metric: str | None, rows: list):
        ids = list(selected or []) or [row[0] for row in rows][:PLOTTED]
        shown = [runs.runs[i] for i in ids if i in runs.runs][:PLOTTED]
        metrics = sorted({tag for run in shown for tag in run.curves})
        if metric not in metrics:
            usual = [m for m in ("val/acc", "val/ppl", "val/loss") if m in metrics]
            metric = (usual or metrics or [None])[0]
        points = [(step, value, run.id) for run in shown for step, value in run.curves.get(metric, [])]
        frame = pd.DataFrame(points, columns=["epoch", "value", "run"])
        return gr.update(value=frame, y_title=metric or "value"), gr.update(choices=metrics, value=metric)

    @handler(5 + len(selectors))
    def scan(query, selected, metric):
        runs.scan()
        rows = rows_of(query)
        kept = [s for s in (selected or []) if s in runs.runs]
        first = opening(list(runs.runs.values())) if not kept else None  # nothing chosen yet: the best run
        kept = [first.id] if first else kept
        choices = [gr.update(choices=[r.id for r in runs.runs.values() if r.kind in opens[s][1]],
                             **({"value": first.id} if first and first.kind in opens[s][1] else {}))
                   for s in selectors]  # fmt: skip
        note = f"{len(runs.runs)} runs under {runs.root}" if runs.runs else f"no runs under {runs.root}"
        if first:
            note += f"; opened `{first.id}`, the best {first.metric} of its experiment's runs ({first.experiment})"
        return (rows, gr.update(choices=list(runs.runs), value=kept), *curves(kept, metric, rows), *choices, note)

    inputs = [ui.query, ui.plotted, ui.metric]
    outputs = [ui.table, ui.plotted, ui.plot, ui.metric, *selectors, ui.message]
    demo.load(scan, inputs, outputs)
    ui.refresh.click(scan, inputs, outputs)

    @handler(4)
    def refilter(query, selected, metric):
        rows = rows_of(query)
        return (rows, *curves(selected, metric, rows), gr.skip())  # the message of what opened stays

    ui.query.change(refilter, inputs, [ui.table, ui.plot, ui.metric, ui.message])
    ui.plotted.change(refilter, inputs, [ui.table, ui.plot, ui.metric, ui.message])
    ui.metric.input(refilter, inputs, [ui.table, ui.plot, ui.metric, ui.message])

    @handler(2 + len(selectors))
    def open_run(selected, evt: gr.SelectData):
        run = runs.get(str(evt.row_value[0]))
        selected = list(dict.fromkeys([*(selected or []), run.id]))[-PLOTTED:]
        opened = [first and run.kind in kinds for _, kinds, first in opens.values()]
        where = ", ".join(tab for (tab, _, _), yes in zip(opens.values(), opened, strict=True) if yes)
        updates = [gr.update(value=run.id) if yes else gr.skip() for yes in opened]
        return (selected, *updates, f"opened `{run.id}` in {where or 'no tab (a kind of model not explored here)'}")

    ui.table.select(open_run, [ui.plotted], [ui.plotted, *selectors, ui.message])


def opening(found: list) -> object | None:
    """The run the page opens on: the best by its monitored metric among the runs of the newest run's
    experiment (debug runs aside), else the newest run; None when there is none."""
    from seq2seq.core.metrics import lower_is_better
    from seq2seq.training.runs import DEBUG

    found = [r for r in found if r.id.split("/", 1)[0] != DEBUG and r.status != "unreadable"] or found
    if not found:
        return None
    newest = found[0]  # runs are listed newest first
    same = [r for r in found if r.experiment == newest.experiment and r.metric and r.best is not None]
    if not same:
        return newest
    sign = 1 if lower_is_better(same[0].metric) else -1
    return min(same, key=lambda r: sign * r.best)


def ask_tab(gr, explorer: Explorer) -> list:
    """A question answered by up to ANSWER_COLUMNS runs side by side; returns the run selectors."""
    with gr.Row():
        chosen = [run_selector(gr, f"run {n + 1}", f"ask-run-{n}") for n in range(ANSWER_COLUMNS)]
    with gr.Row():
        question = gr.Textbox(
            label="question", placeholder="16+75", elem_id="ask-question", scale=4, max_length=analysis.MAX_TEXT
        )
        button = gr.Button("Ask", variant="primary", elem_id="ask-button", scale=1)
    strategy, fields = decoding_fields(gr, "ask")
    with gr.Row():  # which of a Transformer's layers and heads the heatmap shows (an attention decoder has one)
        layer = gr.Number(0, label="attention layer (0: the last)", elem_id="ask-layer")
        head = gr.Number(0, label="attention head (0: the mean of the heads)", elem_id="ask-head")
    message = gr.Markdown(elem_id="ask-message")
    with gr.Row():
        columns = [gr.HTML(elem_id=f"ask-out-{n}") for n in range(ANSWER_COLUMNS)]

    @handler(ANSWER_COLUMNS + 1, clear=True)
    def answer(text, *values):
        runs, strategy = values[:ANSWER_COLUMNS], values[ANSWER_COLUMNS]
        fields, (layer, head) = values[ANSWER_COLUMNS + 1 : -2], values[-2:]
        if not any(runs):
            raise DataError("choose a run (run 1) first")
        # In the order of the page: the runs, the question, then its options.
        models = {n: explorer.model(run, "seq2seq") for n, run in enumerate(runs) if run}
        analysis.check_text(text, "question")
        options = options_of(strategy, fields)
        shown = [""] * ANSWER_COLUMNS
        for n, model in models.items():
            run = runs[n]
            started = time.perf_counter()
            try:
                result = analysis.ask(model, text, options, whole(layer) or None, whole(head) or None)
            except Seq2seqError as e:
                raise DataError(f"{run}: {e}") from None
            shown[n] = answer_html(run, text, result, time.perf_counter() - started)
        return (*shown, "")

    for trigger in (button.click, question.submit):
        # queue=False: answered at once, not through Gradio's queue (its round trip costs more than the models)
        trigger(answer, [question, *chosen, strategy, *fields, layer, head], [*columns, message], queue=False)
    return chosen


def errors_tab(gr, explorer: Explorer) -> list:
    """The validation split's right and wrong answers, broken down, two runs compared; returns the selectors."""
    with gr.Row():
        first = run_selector(gr, "run", "errors-run-a")
        second = run_selector(gr, "compared with (optional)", "errors-run-b")
        button = gr.Button("Check the validation split", variant="primary", elem_id="errors-button")
    message = gr.Markdown(elem_id="errors-message")
    summary = gr.Markdown(elem_id="errors-summary")
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
        headers=["question", "expected", "answered"], interactive=False, label="wrong answers", elem_id="errors-wrong"
    )
    compared = gr.Dataframe(
        headers=["question", "expected", "run", "compared run"],
        interactive=False,
        label="right in one run, wrong in the other",
        elem_id="errors-compared",
    )

    @handler(len(breakdowns) + 4)
    def check(run_a, run_b):
        if not run_a:
            raise DataError("choose a run first")
        started = time.perf_counter()
        a = explorer.validation(run_a)
        seconds = time.perf_counter() - started
        tables = [gr.update(value=a.breakdown(name), label=f"by {name}", visible=True) for name in a.groups]
        tables += [gr.update(visible=False)] * (len(breakdowns) - len(tables))
        rows = zip(a.questions, a.expected, a.answered, a.right, strict=True)
        wrong_rows = [[q, x, y] for q, x, y, right in rows if not right]
        text = (
            f"**{run_a}**: exact match **{a.accuracy:.4f}** on {len(a.right):,} validation questions "
            f"({len(wrong_rows):,} wrong; {seconds:.2f} s)"
        )
        both: list[list] = []
        if run_b:
            b = explorer.validation(run_b)
            only_a, only_b = analysis.compare(a, b)
            text += (
                f"  \n**{run_b}**: exact match **{b.accuracy:.4f}**; right only in the first run: "
                f"**{len(only_a):,}**, right only in the second: **{len(only_b):,}**"
            )
            both = [[q, x, f"☑ {y}", f"☒ {z}"] for q, x, y, z in only_a]
            both += [[q, x, f"☒ {y}", f"☑ {z}"] for q, x, y, z in only_b]
        return (text, *tables, wrong_rows[:SHOWN_ROWS], both[:SHOWN_ROWS], "")

    button.click(check, [first, second], [summary, *breakdowns, wrong, compared, message], queue=False)
    return [first, second]


def sample_tab(gr, explorer: Explorer):
    """A language model's text shaded by word probability, next words at a click, a sentence's perplexity;
    returns the run selector."""
    with gr.Row():
        chosen = run_selector(gr, "language model run", "sample-run")
        prompt = gr.Textbox(
            label="prompt",
            value="the meaning of life is",
            elem_id="sample-prompt",
            scale=3,
            max_length=analysis.MAX_TEXT,
        )
        button = gr.Button("Sample", variant="primary", elem_id="sample-button")
    strategy, fields = decoding_fields(gr, "sample")
    message = gr.Markdown(elem_id="sample-message")
    shaded = gr.HighlightedText(
        label="text: each word shaded by the probability the model gave it (click a word "
        "for the words it considered there)",
        elem_id="sample-text",
        combine_adjacent=False,
    )
    plain = gr.Textbox(
        label="the text as seq2seq-generate prints it", elem_id="sample-plain", interactive=False, lines=2
    )
    state = gr.State(None)  # the run and the word ids shown, for a click
    following = gr.Dataframe(
        headers=["next word", "probability"],
        interactive=False,
        elem_id="sample-next",
        label="top next words at the clicked word",
    )
    with gr.Row():
        sentence = gr.Textbox(
            label="a sentence to score", elem_id="sample-sentence", scale=4, max_length=analysis.MAX_TEXT
        )
        score_button = gr.Button("Perplexity", elem_id="sample-ppl-button")
    scored = gr.Markdown(elem_id="sample-ppl")

    @handler(5)
    def sample(run, text, strategy, *fields):
        if not run:
            raise DataError("choose a language model run first")
        model = explorer.model(run, "lm")
        result = analysis.sample(model, text, options_of(strategy, fields))
        pairs = zip(result.words, result.probs, strict=True)
        words = [(word + " ", None if p is None else round(p, 4)) for word, p in pairs]
        return words, model.words_text(result.ids), {"run": run, "ids": result.ids}, [], ""

    for trigger in (button.click, prompt.submit):
        trigger(sample, [chosen, prompt, strategy, *fields], [shaded, plain, state, following, message])

    @handler(2)
    def clicked(shown, evt: gr.SelectData):
        if not shown:
            raise DataError("sample a text first")
        model = explorer.model(shown["run"], "lm")
        top = analysis.next_words(model, shown["ids"], evt.index)
        before = model.vocab.decode(shown["ids"][: evt.index], sep=" ")[-80:]
        return [[w, round(p, 4)] for w, p in top], f"the words the model considered after “{before}”"

    shaded.select(clicked, [state], [following, message])

    @handler(2)
    def score(run, text):
        if not run:
            raise DataError("choose a language model run first")
        ppl, probs = analysis.perplexity(explorer.model(run, "lm"), text)
        words = " ".join(f"{html.escape(w)}&nbsp;<sub>{p:.3g}</sub>" for w, p in probs)
        return f"perplexity **{ppl:.2f}** over {len(probs)} words: {words}", ""

    for trigger in (score_button.click, sentence.submit):
        trigger(score, [chosen, sentence], [scored, message])
    return chosen


def chat_tab(gr, explorer: Explorer):
    """A chat box with seq2seq-chat's context rules and a reset; returns the run selector."""
    chosen = run_selector(gr, "pair or chitchat run", "chat-run")
    box = gr.Chatbot(elem_id="chat-box", height=320)
    with gr.Row():
        text = gr.Textbox(label="message", elem_id="chat-text", scale=4, max_length=analysis.MAX_TEXT)
        send_button = gr.Button("Send", variant="primary", elem_id="chat-send")
        reset_button = gr.Button("Reset", elem_id="chat-reset")
    message = gr.Markdown(elem_id="chat-message")
    history = gr.State([])  # the conversation's turns, both sides, oldest first

    @handler(4)
    def send(run, said, turns, shown):
        if not run:
            raise DataError("choose a pair or chitchat run first")
        analysis.check_text(said, "message")
        chat = Chat(explorer.model(run, "seq2seq"), {})
        chat.history = list(turns)
        reply = chat.reply(said)
        shown = [*(shown or []), {"role": "user", "content": said}, {"role": "assistant", "content": reply}]
        return shown, chat.history, "", ""

    for trigger in (send_button.click, text.submit):
        trigger(send, [chosen, text, history, box], [box, history, text, message])

    def reset():
        return [], [], "the conversation starts over"

    reset_button.click(reset, None, [box, history, message])
    chosen.change(reset, None, [box, history, message])
    return chosen


def build(explorer: Explorer):
    """The Gradio Blocks of the five tabs over `explorer`'s runs."""
    import gradio as gr

    with gr.Blocks(title="seq2seq explorer", analytics_enabled=False) as demo:
        gr.Markdown(f"### seq2seq explorer: the runs under `{explorer.runs.root}`")
        with gr.Tabs():
            with gr.Tab("Runs", id="runs"):
                runs = runs_tab(gr)
            with gr.Tab("Ask", id="ask"):
                asked = ask_tab(gr, explorer)
            with gr.Tab("Errors", id="errors"):
                checked = errors_tab(gr, explorer)
            with gr.Tab("Sample", id="sample"):
                sampled = sample_tab(gr, explorer)
            with gr.Tab("Chat", id="chat"):
                chatted = chat_tab(gr, explorer)
        opens = {asked[0]: ("Ask", SEQ2SEQ_KINDS, True)}
        opens |= {selector: ("Ask", SEQ2SEQ_KINDS, False) for selector in asked[1:]}
        opens |= {checked[0]: ("Errors", SEQ2SEQ_KINDS, True), checked[1]: ("Errors", SEQ2SEQ_KINDS, False)}
        opens |= {sampled: ("Sample", LM_KINDS, True), chatted: ("Chat", CHAT_KINDS, True)}
        connect_runs(gr, demo, explorer, runs, opens)
    for function in demo.fns.values():  # the page's own handlers: no HTTP API for other clients to call
        function.api_visibility = "private"
    return demo


# ---- serving ----------------------------------------------------------------------------------------


def theme():
    """Gradio's default look with the system's fonts: the default theme loads its fonts from Google."""
    import gradio as gr

    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "SFMono-Regular", "monospace"]
    )


QUEUE = 8  # requests waiting for the one worker at most; more are refused at once, the page stays responsive


def serving_address(host: str, port: int) -> tuple[str, int, set[str] | None]:
    """The address to serve on (port 0: a free one, found here), and the Host headers the page answers: its
    loopback names, or any when it is served to the network on purpose (host=0.0.0.0 or a name)."""
    import ipaddress
    import socket

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.version == 6:
        raise DataError(f"host={host}: IPv6 addresses are not served; give 127.0.0.1 (this machine) or 0.0.0.0")
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", host)} if loopback else None
    return host, port, hosts


def launch(explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Serve the page on host:port (never a public share link); the URL. block=False returns at once
    (tests), with the server running in its own threads. Requests pass seq2seq.explore.guard first; the
    page's handlers take one request at a time from a queue of at most QUEUE."""
    import logging
    import socket

    from starlette.middleware import Middleware

    from seq2seq.explore.guard import Guard

    host, port, hosts = serving_address(host, port)
    for name in ("uvicorn.error", "uvicorn.access"):  # a client's mistake is its answer, not the terminal's
        logging.getLogger(name).setLevel(logging.CRITICAL)
    demo = build(explorer).queue(default_concurrency_limit=1, max_size=QUEUE, api_open=False)
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
        max_file_size="1kb",
        app_kwargs={"middleware": [Middleware(Guard, hosts=hosts)]},
    )
    if hosts is None:  # served to the network: say so, and give an address another machine can use
        url = f"http://{socket.gethostname() if host == '0.0.0.0' else host}:{port}/"
        print(f"warning: serving on {host}:{port}: anyone who can reach this machine's port {port} can use the "
              "explorer and read the runs under its root", file=sys.stderr)  # fmt: skip
    if block:
        try:
            print(f"seq2seq explorer: {url} (runs under {explorer.runs.root}); Ctrl-C stops it", flush=True)
            demo.block_thread()
        except KeyboardInterrupt:  # Ctrl-C: stop quietly, whenever it comes
            pass
        finally:
            demo.close()
    return demo, url
