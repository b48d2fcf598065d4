"""A tour of the explorer over real runs, in headless Chromium: a screenshot of each tab, and the time each
action takes as a person sees it (click to the page updated) beside the time the server spent.

    python scripts/explore_tour.py --root outputs --out docs/explore

Uses the newest finished run of each experiment it names (baseline_addition, reverse_addition,
peeky_addition, attention_addition, rnnlm_ptb, chitchat) found under --root; a missing one skips its part.
Needs the app extra, Playwright for Python and Debian's chromium (or --chromium).
"""

import argparse
import json
import platform
import re
import socket
import statistics
import time
from pathlib import Path

from seq2seq.explore.app import Explorer
from seq2seq.explore.page import launch

QUESTIONS = ["16+75", "582+84", "9+999", "123+456", "70+30", "8+8", "505+96", "44+7", "999+999", "1+2", "315+27"]


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def newest(explorer: Explorer, experiment: str) -> str | None:
    runs = [r for r in explorer.runs.runs.values() if r.experiment == experiment and r.status == "finished"]
    return max(runs, key=lambda r: r.date).id if runs else None


class Tour:
    def __init__(self, page, out: Path):
        self.page, self.out = page, out

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.out / f"{name}.png"), full_page=True)
        print(f"wrote {self.out / name}.png")

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def choose(self, elem_id: str, value: str) -> None:
        box = self.page.locator(f"#{elem_id} input")
        box.fill(value)
        box.press("Enter")
        self.page.locator("body").click(position={"x": 5, "y": 5})

    def fill(self, elem_id: str, value: str) -> None:
        self.page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(value)

    def wait(self, elem_id: str, pattern: str) -> str:
        self.page.wait_for_function(
            "([id, p]) => new RegExp(p).test(document.getElementById(id)?.innerText ?? '')", arg=[elem_id, pattern]
        )
        return self.page.locator(f"#{elem_id}").inner_text()


# Timed inside the page: from the button's click to the element showing the result, each frame checked.
CLICK_TO = """async ([button, selector, text]) => {
  const started = performance.now();
  document.querySelector(button).click();
  const done = () => { const e = document.querySelector(selector); return e && e.innerText.includes(text); };
  while (!done()) await new Promise(r => requestAnimationFrame(r));
  return (performance.now() - started) / 1000;
}"""


def ask(tour: Tour, question: str, columns: int) -> tuple[float, float]:
    """Seconds from the click to every column answering `question`, and the server's own seconds."""
    tour.fill("ask-question", question)
    tour.page.wait_for_timeout(200)  # the typed question reaches the page's state
    selector = f"#ask-out-{columns - 1} .s2s-answer[data-question='{question}']"
    seen = tour.page.evaluate(CLICK_TO, ["#ask-button", selector, ""])
    server = 0.0
    for n in range(columns):
        server += sum(float(ms) for ms in re.findall(r"(\d+) ms", tour.page.locator(f"#ask-out-{n}").inner_text()))
    return seen, server / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("outputs"))
    parser.add_argument("--out", type=Path, default=Path("explore-tour"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--repeat", type=int, default=10, help="questions timed in Ask")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    explorer = Explorer(args.root, device="cpu")
    explorer.runs.scan()
    run = {name: newest(explorer, name) for name in ("baseline_addition", "reverse_addition", "peeky_addition",
                                                     "attention_addition", "rnnlm_ptb", "chitchat")}  # fmt: skip
    print("runs:", json.dumps(run, indent=1))
    demo, url = launch(explorer, port=free_port(), block=False)
    timings: dict = {"cpu": cpu()}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        tour = Tour(page, args.out)
        started = time.perf_counter()
        page.goto(url)
        tour.wait("runs-table", "finished")
        timings["page_load_s"] = round(time.perf_counter() - started, 3)
        addition = [run[k] for k in ("baseline_addition", "reverse_addition", "peeky_addition") if run[k]]
        for r in addition:
            page.locator("#runs-table").get_by_text(r).locator("visible=true").first.click()
            tour.wait("runs-message", re.escape(r))
        page.wait_for_timeout(500)
        tour.shot("runs")

        if addition:
            tour.tab("Ask")
            for n, r in enumerate(addition):
                tour.choose(f"ask-run-{n}", r)
            ask(tour, "16+75", len(addition))  # loads the models: not timed
            times = [ask(tour, q, len(addition)) for q in QUESTIONS[1 : 1 + args.repeat]]
            timings["ask_runs"] = len(addition)
            timings["ask_seen_ms_median"] = round(1000 * statistics.median(t for t, _ in times), 1)
            timings["ask_server_ms_median"] = round(1000 * statistics.median(s for _, s in times), 1)
            ask(tour, "16+75", len(addition))
            tour.shot("ask")
        if run["attention_addition"]:
            tour.choose("ask-run-0", run["attention_addition"])
            for n in (1, 2):
                tour.choose(f"ask-run-{n}", "")
            ask(tour, "582+84", 1)
            tour.shot("ask-attention")

        if len(addition) >= 3:
            tour.tab("Errors")
            tour.choose("errors-run-a", addition[0])
            page.wait_for_timeout(200)
            seconds = page.evaluate(CLICK_TO, ["#errors-button", "#errors-summary", "exact match"])
            timings["errors_first_fill_s"] = round(seconds, 3)
            summary = tour.wait("errors-summary", "exact match")
            timings["errors_server_s"] = float(re.search(r"wrong; ([\d.]+) s", summary).group(1))
            timings["errors_questions"] = int(re.search(r"on ([\d,]+) validation", summary).group(1).replace(",", ""))
            tour.choose("errors-run-a", addition[2])
            tour.choose("errors-run-b", addition[0])
            page.wait_for_timeout(200)
            seconds = page.evaluate(CLICK_TO, ["#errors-button", "#errors-summary", "right only"])
            timings["errors_compare_fill_s"] = round(seconds, 3)
            tour.shot("errors")

        if run["rnnlm_ptb"]:
            tour.tab("Sample")
            tour.choose("sample-run", run["rnnlm_ptb"])
            tour.fill("sample-prompt", "the meaning of life is")
            page.get_by_text("decoding options").locator("visible=true").first.click()
            page.locator("#sample-strategy").get_by_label("sample", exact=True).check()
            tour.fill("sample-seed", "1")
            tour.fill("sample-max_new_tokens", "30")
            page.click("#sample-button")
            page.wait_for_function("document.querySelector('#sample-plain textarea').value.length > 0")
            page.locator("#sample-text").get_by_text("is", exact=True).first.click()
            tour.wait("sample-message", "considered")
            tour.fill("sample-sentence", "the company said it expects to report a loss")
            page.click("#sample-ppl-button")
            tour.wait("sample-ppl", "perplexity")
            tour.shot("sample")

        if run["chitchat"]:
            tour.tab("Chat")
            tour.choose("chat-run", run["chitchat"])
            for message in ("hi !", "how are you ?", "what do you like to do for fun ?"):
                tour.fill("chat-text", message)
                page.click("#chat-send")
                page.wait_for_function("m => document.querySelector('#chat-box').innerText.includes(m)", arg=message)
                page.wait_for_timeout(800)
            tour.shot("chat")
        browser.close()
    demo.close()
    print(json.dumps(timings, indent=1))
    (args.out / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")


if __name__ == "__main__":
    main()
