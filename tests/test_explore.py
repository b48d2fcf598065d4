"""The explorer without a browser: the runs it finds and describes, what each tab computes (checked
against the Python API, TensorBoard and `seq2seq-generate`), its refusals, and its command line.
What a person sees in the page is tested in a real browser in test_explore_browser.py."""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import seq2seq
from seq2seq.core.errors import DataError
from seq2seq.explore import analysis
from seq2seq.explore.app import OPTION_FIELDS, Explorer, handler, options_of
from seq2seq.explore.runs import Runs
from seq2seq.inference import pretrained

from .helpers import run_module, scalars

pytest.importorskip("gradio", reason="the explorer needs the app extra: pip install 'seq2seq[app]'")

ATTENTION, PEEKY, LM, CHAT = "attention_addition/tiny", "peeky_addition/tiny", "rnnlm_ptb/tiny", "reverse_pairs/tiny"
TRANSFORMER = "transformer_addition/tiny"


@pytest.fixture(scope="module")
def explorer(explore_root) -> Explorer:
    explorer = Explorer(explore_root, device="cpu")
    explorer.runs.scan()
    return explorer


def test_the_runs_table_describes_every_run(explorer, explore_root):
    runs = explorer.runs.runs
    assert set(runs) == {TRANSFORMER, ATTENTION, PEEKY, LM, CHAT}
    assert {runs[i].kind for i in runs} == {"fixed_width", "lm", "token_pairs"}
    for run in runs.values():
        assert run.status == "finished" and run.date
        assert run.metric in run.curves, run  # the monitored metric's curve, read from the event files
        best = max if run.metric.endswith("acc") else min
        values = [v for _, v in scalars(explore_root / run.id, run.metric)]
        assert run.best == pytest.approx(best(values)) and run.final == pytest.approx(values[-1])
    assert runs[ATTENTION].experiment == "attention_addition" and runs[ATTENTION].seed == 0
    assert runs[LM].metric == "val/ppl" and runs[CHAT].metric == "val/acc"


def test_the_status_tells_finished_interrupted_failed_and_shared(explore_root, tmp_path):
    """status.json says where a run stands; a run left at running by a process that no longer holds its lock
    was killed; a run of an earlier version (no status.json) is read from its log."""
    root = tmp_path / "outputs"
    for name in ("finished", "interrupted", "failed", "running", "killed", "old_finished", "old_failed"):
        shutil.copytree(explore_root / ATTENTION, root / name)
    for name, state in (("interrupted", "interrupted"), ("failed", "failed"), ("running", "running"),
                        ("killed", "running")):  # fmt: skip
        status = json.loads((root / name / "status.json").read_text())
        (root / name / "status.json").write_text(json.dumps({**status, "state": state}))
    (root / "running" / ".lock").write_text(f"{os.getpid()}\n")  # a live process holds it
    done = "[2026-11-30 10:00:00,000][seq2seq.summary][INFO] - done: best val/acc 0.1 (step 2) | final ...\n"
    for name, log in (("old_finished", "[...][INFO] - epoch 1\n" + done), ("old_failed", "[...][ERROR] - oops\n")):
        (root / name / "status.json").unlink()
        (root / name / "train.log").write_text(log)
    pretrained.save(explore_root / PEEKY / "best.pt", root / "shared" / "peeky")
    runs = Runs(root)
    statuses = {run.id: run.status for run in runs.scan()}
    assert statuses == {"finished": "finished", "interrupted": "interrupted", "failed": "failed", "running": "running",
                        "killed": "interrupted", "old_finished": "finished", "old_failed": "failed",
                        "shared/peeky": "shared"}  # fmt: skip
    shared = runs.runs["shared/peeky"]
    assert shared.kind == "fixed_width" and shared.experiment == "peeky_addition" and shared.best is not None
    explorer, original = Explorer(root, device="cpu"), Explorer(explore_root, device="cpu")
    assert analysis.ask(explorer.model("shared/peeky"), "16+75", {}).text == seq2seq.load(
        explore_root / PEEKY
    ).generate("16+75")  # a shared folder answers and validates as its checkpoint does
    assert explorer.validation("shared/peeky").right == original.validation(PEEKY).right


def test_paths_outside_the_root_are_refused(explore_root, tmp_path):
    root = tmp_path / "outputs"
    shutil.copytree(explore_root / PEEKY, root / PEEKY)
    outside = tmp_path / "elsewhere"
    shutil.copytree(explore_root / PEEKY, outside)
    (root / "link_out").symlink_to(outside)
    runs = Runs(root)
    assert runs.path(PEEKY) == (root / PEEKY).resolve()
    assert runs.path(str(root / PEEKY)) == (root / PEEKY).resolve()  # absolute, inside
    for value, says in [("../", "'..'"), (f"{PEEKY}/../../..", "'..'"), ("/etc", "outside"),
                        (str(outside), "outside"), ("link_out", "outside"), ("nothing/here", "no such run"),
                        ("", "choose a run")]:  # fmt: skip
        with pytest.raises(DataError, match=says):
            runs.path(value)
    assert [run.id for run in runs.scan()] == [PEEKY]  # links are not followed when searching


def test_a_checkpoint_linking_out_of_the_root_is_refused(explore_root, tmp_path):
    root = tmp_path / "outputs"
    shutil.copytree(explore_root / PEEKY, root / "run")
    shutil.move(root / "run" / "best.pt", tmp_path / "best.pt")
    (root / "run" / "best.pt").symlink_to(tmp_path / "best.pt")
    with pytest.raises(DataError, match="outside"):
        Explorer(root, device="cpu").model("run")


def test_ask_answers_as_the_api_does_with_each_steps_choices(explorer, explore_root):
    model = seq2seq.load(explore_root / ATTENTION, device="cpu")
    loaded = explorer.model(ATTENTION, "seq2seq")
    for question in ("16+75", "9+9", "58+7"):
        answer = analysis.ask(loaded, question, {})
        assert answer.text == model.generate(question)
        emitted = "".join(step.token for step in answer.steps).rstrip()
        assert emitted == answer.text  # the steps spell the answer out
        for step in answer.steps:  # greedy: each step emitted its likeliest token
            assert step.top[0][0] == step.token and step.top[0][1] == pytest.approx(step.prob)
            assert len(step.top) == analysis.TOP_STEPS and sum(p for _, p in step.top) <= 1 + 1e-5
        assert answer.attention is not None and len(answer.attention) == len(answer.steps)
        assert all(sum(row) == pytest.approx(1, abs=1e-4) for row in answer.attention)
        assert len(answer.attention[0]) == len(answer.source) == model.codec.width
    beam = analysis.ask(loaded, "16+75", {"strategy": "beam", "n_best": 3})
    assert [text for text, _ in beam.nbest] == model.generate("16+75", strategy="beam", n_best=3)
    assert [s for _, s in beam.nbest] == sorted((s for _, s in beam.nbest), reverse=True)
    peeky = analysis.ask(explorer.model(PEEKY, "seq2seq"), "16+75", {})
    assert peeky.attention is None and peeky.source == list("16+75")[::-1]  # as fed to the encoder: reversed
    samples = analysis.ask(loaded, "16+75", {"strategy": "sample", "num_samples": 3, "seed": 4})
    assert samples.samples == model.generate("16+75", strategy="sample", num_samples=3, seed=4)


def test_the_errors_tab_counts_as_training_does(explorer, explore_root):
    for run in (ATTENTION, PEEKY, CHAT):
        validation = explorer.validation(run)
        model = seq2seq.load(explore_root / run, device="cpu")
        values = [value for _, value in scalars(explore_root / run, "val/acc")]
        assert validation.accuracy == pytest.approx(max(values), abs=1e-6)  # best.pt: the best val/acc
        assert run == CHAT or validation.accuracy > 0  # some right answers: the count is not trivially zero
        wrong = [i for i, right in enumerate(validation.right) if not right]
        for i in wrong[:20]:  # each wrong answer is the model's own greedy answer
            assert validation.answered[i] != validation.expected[i]
        if run != CHAT:
            assert validation.answered[:50] == model.generate(validation.questions[:50])
    validation = explorer.validation(ATTENTION)
    assert set(validation.groups) == {"question length", "answer digits", "carries"}
    for name in validation.groups:
        rows = validation.breakdown(name)
        assert sum(n for _, n, _, _ in rows) == len(validation.right)
        assert sum(good for _, _, good, _ in rows) == sum(validation.right)
    assert analysis.carries("16+75") == 1 and analysis.carries("999+1") == 3 and analysis.carries("12+3") == 0
    only_a, only_b = analysis.compare(validation, explorer.validation(PEEKY))
    a, b = validation, explorer.validation(PEEKY)
    assert len(only_a) == sum(x and not y for x, y in zip(a.right, b.right, strict=True))
    assert len(only_b) == sum(y and not x for x, y in zip(a.right, b.right, strict=True))
    with pytest.raises(DataError, match="different questions"):
        analysis.compare(validation, explorer.validation(CHAT))


def test_sample_shows_the_generated_text_with_the_models_probabilities(explorer, explore_root):
    model = explorer.model(LM, "lm")
    options = {"strategy": "sample", "seed": 7, "max_new_tokens": 12}
    result = analysis.sample(model, "the cat", options)
    text = seq2seq.load(explore_root / LM, device="cpu").generate("the cat", **options)
    assert model.words_text(result.ids) == text and result.prompt_length == 2
    assert result.probs[0] is None and all(0 < p <= 1 for p in result.probs[1:])
    top = analysis.next_words(model, result.ids, 3)  # what the model considered for the 4th word
    assert dict(top)[result.words[3]] == pytest.approx(result.probs[3], rel=1e-5)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    ppl, probs = analysis.perplexity(model, "the cat sat on the mat")
    assert [w for w, _ in probs] == ["the", "cat", "sat", "on", "the", "mat"]
    assert ppl == pytest.approx(math.exp(-sum(math.log(p) for _, p in probs) / 6))
    with pytest.raises(DataError, match="not in the model's"):
        analysis.perplexity(model, "the zebra")
    with pytest.raises(DataError, match="first word"):
        analysis.next_words(model, result.ids, 0)


def test_bad_input_becomes_one_message(explorer):
    model = explorer.model(ATTENTION, "seq2seq")
    cases = [
        (lambda: analysis.ask(model, "x" * 2**20, {}), "at most 2,000"),
        (lambda: analysis.ask(model, "16+a", {}), "not in the model.s vocabulary"),
        (lambda: analysis.ask(model, "16+75", {"strategy": "beam", "beam_size": 0}), "beam_size=0"),
        (lambda: analysis.ask(model, "16+75", {"temperature": 2.0}), "applies to strategy=sample"),
        (lambda: explorer.model(LM, "seq2seq"), "a lm model"),
        (lambda: explorer.model(ATTENTION, "lm"), "samples language models"),
        (lambda: explorer.validation(LM), "a lm model"),
    ]
    for call, says in cases:
        with pytest.raises(seq2seq.core.errors.Seq2seqError, match=says):
            call()

    @handler(3)
    def fails(kind):
        raise DataError("a question like 16+75") if kind == "user" else KeyError("bug")

    *skipped, shown = fails("user")
    assert len(skipped) == 2 and shown == "**error:** a question like 16+75"
    assert "unexpected error" in fails("bug")[-1] and "KeyError" in fails("bug")[-1]


def test_options_of_the_page_follow_the_strategy():
    values = [""] * 10
    values[2], values[4] = " 4 ", "0.5"  # beam_size, length_penalty
    assert options_of("beam", values) == {"strategy": "beam", "beam_size": 4, "length_penalty": 0.5}
    assert options_of("greedy", values) == {"strategy": "greedy"}  # a hidden field of another strategy is not sent
    assert options_of(None, [None] * 10) == {"strategy": None}
    with pytest.raises(DataError, match="beam_size='four': not a number"):
        options_of("beam", ["", "", "four", *[""] * 7])


def test_loaded_models_are_cached_within_a_bound(explore_root):
    explorer = Explorer(explore_root, device="cpu", cache=2)
    explorer.runs.scan()
    first = explorer.model(ATTENTION)
    assert explorer.model(ATTENTION) is first
    explorer.model(PEEKY), explorer.model(LM)
    assert len(explorer.models) == 2 and explorer.model(ATTENTION) is not first
    with pytest.raises(DataError, match="cache=0"):
        Explorer(explore_root, cache=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outward_address() -> str | None:
    """An address of this machine other than loopback, when it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # UDP: sends nothing, picks the outward interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_the_command_serves_this_machine_only_and_stops_on_ctrl_c(explore_root):
    port = free_port()
    cmd = [sys.executable, "-m", "seq2seq.explore", f"root={explore_root}", f"port={port}", "device=cpu"]
    # Ctrl-C as at a terminal, even when pytest was started with SIGINT ignored (a background job).
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line + proc.stderr.read()
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        address = outward_address()
        if address:  # bound to loopback: the machine's other address does not answer
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "Traceback" not in err, err
    finally:
        proc.kill()


@pytest.mark.slow
def test_command_line_mistakes_are_one_line(explore_root, tmp_path):
    cases = [
        ([f"root={tmp_path / 'missing'}"], "not a folder of runs"),
        (["port=70000"], "port=70000"),
        (["device=tpu"], "device=tpu"),
        (["+colour=red"], "colour"),
        (["cache=0"], "cache=0"),
    ]
    for args, says in cases:
        result = run_module("seq2seq.explore", f"root={explore_root}", *args)
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    helped = run_module("seq2seq.explore", "--help")
    assert helped.returncode == 0 and "root" in helped.stdout and "port" in helped.stdout
    blocked = subprocess.run(  # without the app extra: which extra installs it
        [sys.executable, "-c", "import sys, runpy; sys.modules['gradio'] = None; sys.argv = ['x', "
         f"'root={explore_root}']; runpy.run_module('seq2seq.explore', run_name='__main__')"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert blocked.returncode == 2 and "pip install '.[app]'" in blocked.stderr, blocked.stderr
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        started = time.monotonic()
        busy = run_module("seq2seq.explore", f"root={explore_root}", f"port={taken.getsockname()[1]}")
        assert busy.returncode == 2 and "give another port" in busy.stderr, busy.stderr
        assert "Traceback" not in busy.stderr and time.monotonic() - started < 60
    finally:
        taken.close()


def test_the_run_finder_stays_within_its_depth_and_skips_hidden_folders(tmp_path, explore_root):
    root = tmp_path / "outputs"
    deep = root / "a" / "b" / "c" / "d" / "e"
    shutil.copytree(explore_root / PEEKY, deep)
    shutil.copytree(explore_root / PEEKY, root / ".hidden" / "run")
    shutil.copytree(explore_root / PEEKY, root / "a" / "run")
    assert [run.id for run in Runs(root).scan()] == ["a/run"]
    assert Runs(root).get("a/b/c/d/e").id == "a/b/c/d/e"  # named directly, it opens
    with pytest.raises(DataError, match="not a run folder"):
        Runs(root).get("a")


def test_crafted_run_folders_neither_hang_nor_hide_the_other_runs(explore_root, tmp_path):
    import threading

    root = tmp_path / "outputs"
    shutil.copytree(explore_root / PEEKY, root / "good")
    crafted = {
        "fifo_log": lambda run: (run / "train.log").unlink() or os.mkfifo(run / "train.log"),
        "zero_log": lambda run: (run / "train.log").unlink() or (run / "train.log").symlink_to("/dev/zero"),
        "folder_log": lambda run: (run / "train.log").unlink() or (run / "train.log").mkdir(),
        "list_target": lambda run: (run / "config.yaml").write_text("task: {_target_: [1, 2]}\n"),
        "huge_pid": lambda run: (run / "train.log").write_text("epoch 1\n") or (run / ".lock").write_text("9" * 30),
        "group_pid": lambda run: (run / "train.log").write_text("epoch 1\n") or (run / ".lock").write_text("0\n"),
    }
    for name, craft in crafted.items():
        shutil.copytree(explore_root / PEEKY, root / name)
        if name.endswith("_pid"):  # left at running: no live process holds them
            (root / name / "status.json").write_text(json.dumps({"state": "running"}))
        else:  # runs of an earlier version: the log is read
            (root / name / "status.json").unlink()
        craft(root / name)
    shared = {
        "list_config": [1],
        "int_overrides": {"family": "seq2seq", "source": {"overrides": 5}},
        "huge_metric": {"family": "seq2seq", "source": {"metrics": {"val/acc": 10**400}}},
    }
    for name, config in shared.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(config))
        (root / name / "model.safetensors").write_bytes(b"")
    found = []
    scanning = threading.Thread(target=lambda: found.extend(Runs(root).scan()), daemon=True)
    scanning.start()
    scanning.join(timeout=60)
    assert not scanning.is_alive(), "the scan hangs"
    statuses = {run.id: run.status for run in found}
    assert len(statuses) == 10 and statuses["good"] == "finished"
    assert statuses["fifo_log"] == statuses["zero_log"] == statuses["folder_log"] == "interrupted"
    assert statuses["huge_pid"] == statuses["group_pid"] == "interrupted"  # no live process holds them
    assert {statuses[n] for n in ("list_config", "int_overrides", "huge_metric")} == {"shared"}


def test_links_out_of_the_root_and_odd_paths_are_refused_in_one_line(explore_root, tmp_path):
    root = tmp_path / "outputs"
    pretrained.save(explore_root / PEEKY / "best.pt", tmp_path / "outside")
    (root / "shared").mkdir(parents=True)
    for file in (tmp_path / "outside").iterdir():  # a shared folder whose files lie elsewhere
        (root / "shared" / file.name).symlink_to(file)
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    explorer = Explorer(root, device="cpu")
    for value, says in [("shared", "lies outside"), ("loop_a", "not a path"), ("x" * 300, "not a path")]:
        with pytest.raises(DataError, match=says):
            explorer.model(value)


def test_the_page_bounds_what_one_request_may_ask():
    fields = dict.fromkeys(OPTION_FIELDS, "")
    for name, value, says in [("max_new_tokens", "100000", "at most 1,000"), ("num_samples", "10000", "at most 20"),
                              ("temperature", "1" + "0" * 400, "not a number")]:  # fmt: skip
        strategy = "sample" if name != "max_new_tokens" else None
        with pytest.raises(DataError, match=says):
            options_of(strategy, list({**fields, name: value}.values()))


def test_files_linking_out_of_the_root_are_not_read(explore_root, tmp_path):
    """A run whose config.yaml, .hydra/ record or shared config.json links out of the root is listed without
    what those files hold: the page never shows a file outside its root."""
    root, secret = tmp_path / "outputs", tmp_path / "secret"
    secret.mkdir()
    (secret / "config.yaml").write_text("name: SECRET_NAME\nseed: 7\ntask: {monitor: SECRET_METRIC}\n")
    (secret / "overrides.yaml").write_text("- SECRET_OVERRIDE=1\n")
    (secret / "config.json").write_text(json.dumps({"family": "seq2seq", "source": {"experiment": "SECRET"}}))
    for name in ("config", "hydra", "shared"):
        shutil.copytree(explore_root / PEEKY, root / name)
    (root / "config" / "config.yaml").unlink()
    (root / "config" / "config.yaml").symlink_to(secret / "config.yaml")
    shutil.rmtree(root / "hydra" / ".hydra")
    (root / "hydra" / ".hydra").symlink_to(secret)
    pretrained.save(explore_root / PEEKY / "best.pt", root / "exported")
    (root / "exported" / "config.json").unlink()
    (root / "exported" / "config.json").symlink_to(secret / "config.json")
    shown = json.dumps([run.row() for run in Runs(root).scan()])
    assert "SECRET" not in shown
    rows = {row[0]: row for row in json.loads(shown)}
    assert set(rows) == {"config", "hydra", "shared", "exported"}  # listed all the same


def test_the_server_takes_its_own_pages_requests_only(explorer):
    """Real HTTP: another site's origin, another host name (DNS rebinding), uploads and oversized bodies are
    refused before Gradio; the page has no API for other clients; the queue is bounded."""
    import urllib.error
    import urllib.request

    from seq2seq.explore import page

    demo, url = page.launch(explorer, "127.0.0.1", 0, block=False)
    try:

        def status(path="", headers=None, data=None) -> tuple[int, str]:
            request = urllib.request.Request(url + path, data=data, headers=headers or {})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.read().decode(errors="replace")
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace")

        assert status()[0] == 200
        assert status(headers={"Origin": "http://evil.example"}) == (403, "requests from another page are not taken\n")
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert status(headers={"Host": f"evil.example:{port}"})[0] == 421
        assert status("gradio_api/upload", data=b"x" * 10)[0] == 403
        assert (
            status("gradio_api/queue/join", data=b"{" * 300_000, headers={"Content-Type": "application/json"})[0] == 413
        )
        assert json.loads(status("gradio_api/info")[1]) == {"named_endpoints": {}, "unnamed_endpoints": {}}
        assert demo._queue.max_size == page.QUEUE
    finally:
        demo.close()


def test_the_serving_address_is_checked_and_said():
    from seq2seq.core.errors import DataError
    from seq2seq.explore.page import serving_address

    host, port, hosts = serving_address("127.0.0.1", 0)
    assert host == "127.0.0.1"
    assert port > 0 and hosts == {f"127.0.0.1:{port}", f"localhost:{port}"}  # port=0: a free one, found here
    assert serving_address("0.0.0.0", 8123)[2] is None  # to the network, on purpose: any host name
    for ipv6 in ("::", "::1"):
        with pytest.raises(DataError, match="IPv6 addresses are not served"):
            serving_address(ipv6, 7860)
