"""The explorer in a real browser: headless Chromium (Debian's package) driven by Playwright, over tiny
runs of each family (the `explore_root` fixture). Each test checks what a person sees, against the
Python API, TensorBoard and `seq2seq-generate`, and leaves a screenshot of its tab in test-artifacts/
(or $SEQ2SEQ_TEST_ARTIFACTS). No page may ask anything of another host."""

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

import seq2seq
from seq2seq.inference.chat import Chat

from .helpers import REPO, run_module, scalars

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SEQ2SEQ_TEST_ARTIFACTS", REPO / "test-artifacts")) / "explorer"
ATTENTION, PEEKY, LM, CHAT = "attention_addition/tiny", "peeky_addition/tiny", "rnnlm_ptb/tiny", "reverse_pairs/tiny"
TRANSFORMER = "transformer_addition/tiny"
WAIT = 60_000  # ms: the first answer of a worker that is also training may be slow

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python: pip install playwright")
pytest.importorskip("gradio", reason="the explorer needs the app extra: pip install 'seq2seq[app]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(explore_root):
    from seq2seq.explore.app import Explorer
    from seq2seq.explore.page import launch

    explorer = Explorer(explore_root, device="cpu")
    demo, url = launch(explorer, port=free_port(), block=False)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
    page.set_default_timeout(WAIT)
    page.goto(served)
    wait_text(page, "runs-table", "tiny")
    yield page
    page.close()
    assert hosts <= {"127.0.0.1", None}, f"the page asked other hosts: {hosts}"  # None: data: URLs


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def choose(page, elem_id: str, value: str) -> None:
    """Type a run into a run selector (its choices, or any path) and confirm it."""
    box = page.locator(f"#{elem_id} input")
    box.fill(value)
    box.press("Enter")
    page.locator("body").click(position={"x": 5, "y": 5})  # leave the box: the value is set


def fill(page, elem_id: str, value: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(value)


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def wait_text(page, elem_id: str, pattern: str) -> str:
    """The element's text once it matches the regular expression `pattern`: the text that matched, read
    in the same instant (Gradio may redraw the element, empty for a moment, just after)."""
    script = """([id, pattern]) => {
        const text = document.getElementById(id)?.innerText ?? '';
        return new RegExp(pattern).test(text) ? {text} : null;
    }"""
    return page.wait_for_function(script, arg=[elem_id, pattern]).json_value()["text"]


def test_the_runs_table_lists_the_runs_and_a_click_opens_one(page):
    table = wait_text(page, "runs-table", "tiny")
    for run in (TRANSFORMER, ATTENTION, PEEKY, LM, CHAT):
        assert run in table
    assert table.count("finished") == 5
    page.wait_for_selector("#runs-curves canvas, #runs-curves svg")  # the val/ curves are drawn
    screenshot(page, "runs")
    assert "the best" in wait_text(page, "runs-message", "opened")  # the page opens on a run of its own choice
    page.locator("#runs-table").get_by_text(ATTENTION).locator("visible=true").first.click()
    assert ATTENTION in wait_text(page, "runs-message", "opened .+ in Ask, Errors")
    open_tab(page, "Ask")
    assert page.locator("#ask-run-0 input").input_value() == ATTENTION
    open_tab(page, "Runs")
    fill(page, "runs-filter", "peeky")
    table = wait_text(page, "runs-table", r"^(?![\s\S]*rnnlm)[\s\S]*peeky")  # the other runs filtered out
    assert PEEKY in table and ATTENTION not in table


def test_a_question_gets_each_models_answer_with_steps_and_a_heatmap(page, explore_root):
    open_tab(page, "Ask")
    choose(page, "ask-run-0", ATTENTION)
    choose(page, "ask-run-1", PEEKY)
    fill(page, "ask-question", "16+75")
    page.click("#ask-button")
    page.wait_for_selector("#ask-out-1 .s2s-answer")
    for n, run in enumerate((ATTENTION, PEEKY)):
        expected = seq2seq.load(explore_root / run, device="cpu").generate("16+75")
        shown = page.locator(f"#ask-out-{n} .s2s-answer-text").inner_text().strip()
        assert shown == expected, run
        assert page.locator(f"#ask-out-{n} .s2s-steps tr").count() == 1 + 3  # a header and the answer's 3 steps
    assert page.locator("#ask-out-0 .s2s-heatmap").count() == 1  # the attention run
    assert page.locator("#ask-out-1 .s2s-heatmap").count() == 0  # Peeky has no attention
    screenshot(page, "ask")
    page.get_by_text("decoding options").locator("visible=true").first.click()
    page.locator("#ask-strategy").get_by_label("beam").check()
    fill(page, "ask-n_best", "3")
    page.click("#ask-button")
    page.wait_for_selector("#ask-out-0 .s2s-nbest")
    beams = seq2seq.load(explore_root / ATTENTION, device="cpu").generate("16+75", strategy="beam", n_best=3)
    rows = page.locator("#ask-out-0 .s2s-nbest tr").all_inner_texts()[1:]
    assert [row.split("\t")[1].strip() for row in rows] == [b.strip() for b in beams]
    screenshot(page, "ask-beam")


def test_the_heatmap_shows_the_transformer_layer_and_head_asked_for(page, explore_root):
    """A Transformer's heatmap: the last layer's mean of heads by default, any layer and head on demand (the
    page's weights equal the model's), and a layer it does not have is a message."""
    from seq2seq.explore import analysis

    open_tab(page, "Ask")
    choose(page, "ask-run-0", TRANSFORMER)
    fill(page, "ask-question", "16+75")
    page.click("#ask-button")
    page.wait_for_selector("#ask-out-0 .s2s-heatmap")
    assert "layer 2 of 2, mean of 2 heads" in page.locator("#ask-out-0 .s2s-attention-of").inner_text()
    fill(page, "ask-layer", "1")
    fill(page, "ask-head", "2")
    page.locator("body").click(position={"x": 5, "y": 5})  # leave the number box: its value is set
    page.click("#ask-button")
    page.wait_for_selector("#ask-out-0 .s2s-attention-of:has-text('layer 1 of 2, head 2 of 2')")
    model = seq2seq.load(explore_root / TRANSFORMER, device="cpu")
    expected = analysis.ask(model, "16+75", {}, layer=1, head=2).attention
    shown = [float(cell.get_attribute("title")) for cell in page.locator("#ask-out-0 .s2s-heatmap td").all()]
    assert shown == pytest.approx([w for row in expected for w in row], abs=1e-3)
    screenshot(page, "ask-transformer-heads")
    fill(page, "ask-layer", "3")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.click("#ask-button")
    page.wait_for_selector("#ask-message:has-text('attention layer 3: this model has 2 (1 to 2)')")
    assert page.locator("#ask-out-0 .s2s-heatmap").count() == 0  # no answer left that reads as this request's


def test_bad_input_and_paths_outside_the_root_show_a_message(page, tmp_path):
    open_tab(page, "Ask")
    choose(page, "ask-run-0", ATTENTION)
    fill(page, "ask-question", "16+a")
    page.click("#ask-button")
    assert "not in the model's vocabulary" in wait_text(page, "ask-message", "error")
    fill(page, "ask-question", "16+75")
    page.get_by_text("decoding options").locator("visible=true").first.click()
    page.locator("#ask-strategy").get_by_label("beam").check()
    fill(page, "ask-beam_size", "5000")
    page.click("#ask-button")
    assert "beam_size=5000" in wait_text(page, "ask-message", "beam_size")
    for outside in ("/etc", "../../..", str(tmp_path)):
        choose(page, "ask-run-0", outside)
        page.click("#ask-button")
        message = wait_text(page, "ask-message", "outside|'..'")
        assert "Traceback" not in message
    screenshot(page, "ask-refused")


def test_the_errors_tab_shows_the_accuracy_tensorboard_shows(page, explore_root):
    open_tab(page, "Errors")
    choose(page, "errors-run-a", ATTENTION)
    choose(page, "errors-run-b", PEEKY)
    page.click("#errors-button")
    summary = wait_text(page, "errors-summary", "right only in the second")
    best = max(value for _, value in scalars(explore_root / ATTENTION, "val/acc"))
    assert best > 0 and f"exact match {best:.4f}" in summary
    assert page.locator("#errors-by-2").is_visible() and "carries" in wait_text(page, "errors-by-2", "carries")
    screenshot(page, "errors")


def test_sampling_with_a_seed_is_repeatable_and_matches_generate(page, explore_root):
    open_tab(page, "Sample")
    choose(page, "sample-run", LM)
    fill(page, "sample-prompt", "the cat")
    page.get_by_text("decoding options").locator("visible=true").first.click()
    page.locator("#sample-strategy").get_by_label("sample", exact=True).check()
    fill(page, "sample-seed", "5")
    fill(page, "sample-max_new_tokens", "12")
    texts = []
    for prompt in ("the cat", "dogs", "the cat"):  # a prompt in between: each text is a new answer
        fill(page, "sample-prompt", prompt)
        page.click("#sample-button")
        page.wait_for_function(
            "p => document.querySelector('#sample-plain textarea').value.startsWith(p)", arg=prompt + " "
        )
        texts.append(page.locator("#sample-plain textarea").input_value())
    texts.pop(1)
    generated = run_module("seq2seq.generate", f"checkpoint={explore_root / LM}", "prompt=the cat", "strategy=sample",
                           "seed=5", "max_new_tokens=12", "device=cpu")  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    assert texts[0] == texts[1] == generated.stdout.strip()
    page.locator("#sample-text").get_by_text(re.compile(r"^\S+\s*$")).nth(3).click()  # a word: its top next words
    assert "the words the model considered" in wait_text(page, "sample-message", "considered")
    wait_text(page, "sample-next", r"probability[\s\S]*0\.\d")  # the words and their probabilities
    fill(page, "sample-sentence", "the cat sat on the mat")
    page.click("#sample-ppl-button")
    assert "over 6 words" in wait_text(page, "sample-ppl", "perplexity")
    screenshot(page, "sample")


def test_chat_answers_as_seq2seq_chat_and_resets(page, explore_root):
    open_tab(page, "Chat")
    choose(page, "chat-run", CHAT)
    expected = Chat(seq2seq.load(explore_root / CHAT, device="cpu"), {}).reply("a b c d")
    assert expected  # the model learnt to answer something
    fill(page, "chat-text", "a b c d")
    page.click("#chat-send")
    wait_text(page, "chat-box", re.escape(expected))
    screenshot(page, "chat")
    page.click("#chat-reset")
    assert "starts over" in wait_text(page, "chat-message", "starts over")
    assert expected not in text_of(page, "chat-box")
