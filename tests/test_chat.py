"""The chitchat task (pairs from the chitchat-dataset corpus) and the `seq2seq.chat` loop."""

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from seq2seq.cli.chat import chat_from_config
from seq2seq.core import decoding
from seq2seq.core.errors import DataError
from seq2seq.data.chitchat import reply_pairs
from seq2seq.data.text import SEP, tokenize_turns
from seq2seq.inference.api import load
from seq2seq.tasks import ChitchatTask
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.loop import train

from .helpers import assert_ok, compose_train, run_module


def test_consecutive_turns_become_message_reply_pairs():
    conversations = [["hi", "hello", "how are you?"], ["yo", ""], ["a", "b"]]
    assert reply_pairs(conversations) == [("hi", "hello"), ("hello", "how are you?"), ("a", "b")]


def test_with_context_a_source_holds_the_turns_before_the_message():
    conversations = [["hi", "hello", "how are you?", "fine"], ["yo", ""]]
    assert reply_pairs(conversations, context_turns=2) == [
        (("hi",), "hello"),
        (("hi", "hello"), "how are you?"),
        (("hi", "hello", "how are you?"), "fine"),
    ]
    assert tokenize_turns(["Hi there", "yo !"], "wordpunct", lowercase=True) == ["hi", "there", SEP, "yo", "!"]


def test_conversations_not_pairs_are_split():
    task = ChitchatTask(max_conversations=200, val_fraction=0.1, min_freq=1, seed=0)
    train_convs, val_convs = task.conversations["train"], task.conversations["val"]
    assert len(val_convs) == 20 and len(train_convs) == 180
    assert not {id(c) for c in train_convs} & {id(c) for c in val_convs}  # each conversation in one split
    val_turns = {" ".join(turn.split()) for conv in val_convs for turn in conv}  # word tokens, as the task's
    assert len(task.tokenized["val"]) > 20 and all(" ".join(s) in val_turns for s, _ in task.tokenized["val"])


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    """A tiny chitchat model trained for one epoch on the first 80 conversations of the real corpus."""
    out = tmp_path_factory.mktemp("chat")
    overrides = ["experiment=chitchat", "task.max_conversations=80", "task.min_freq=1", "trainer.progress=false"]
    cfg = compose_train(out, *overrides, "model.wordvec_size=16", "model.hidden_size=32", "trainer.max_epochs=1")
    metrics = train(cfg)
    return out, metrics


@pytest.fixture(scope="module")
def context_run(tmp_path_factory):
    """A tiny chitchat model trained with the two turns before each message in its sources."""
    out = tmp_path_factory.mktemp("chat_context")
    overrides = ["experiment=chitchat", "task.max_conversations=60", "task.min_freq=1", "trainer.progress=false"]
    overrides += ["task.context_turns=2", "task.max_length=60", "model.wordvec_size=16", "model.hidden_size=32"]
    train(compose_train(out, *overrides, "trainer.max_epochs=1"))
    return out


@pytest.mark.slow
def test_a_context_model_reads_the_earlier_turns(context_run, chat_run):
    model = load(context_run, device="cpu")
    codec = model.codec
    assert ckpt.read(context_run)["task"]["context_turns"] == 2 and SEP in codec.vocab
    x, _ = codec.encode(["how are you ?"], ["hi", "hello there", "yo"])  # the last two turns are read
    assert codec.tokens(x[0].tolist()) == tokenize_turns(["hello there", "yo", "how are you ?"], "wordpunct", True)
    assert codec.tokens(codec.encode(["how are you ?"])[0][0].tolist()) == ["how", "are", "you", "?"]
    assert isinstance(model.generate("hi", context=["hello"]), str)
    with pytest.raises(DataError, match=r"trained on single messages \(task.context_turns=0\): it takes no context"):
        load(chat_run[0], device="cpu").generate("hi", context=["hello"])


class Recorder:
    """Stands in for a TrainedModel's generate: records the context of each message."""

    def __init__(self):
        self.contexts = []

    def __call__(self, message, context=(), **options):
        self.contexts.append(list(context))
        return f"re {message}"


@pytest.mark.slow
def test_the_chat_keeps_the_last_turns_as_trained_and_reset_forgets_them(context_run, chat_run):
    from hydra import compose, initialize_config_dir

    from seq2seq.training.config import CONFIG_DIR

    def chat_with(run, *overrides):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            session = chat_from_config(compose("chat", overrides=[f"checkpoint={run}", "device=cpu", *overrides]))
        session.model.generate = Recorder()
        return session

    talk = chat_with(context_run)
    for message in ("a", "b", "c"):
        talk.reply(message)
    assert talk.model.generate.contexts == [[], ["a", "re a"], ["b", "re b"]]
    talk.reset()
    talk.reply("d")
    assert talk.model.generate.contexts[-1] == []
    one = chat_with(context_run, "context=1")
    one.reply("a"), one.reply("b")
    assert one.model.generate.contexts == [[], ["re a"]]
    alone = chat_with(chat_run[0])
    alone.reply("a"), alone.reply("b")
    assert alone.model.generate.contexts == [[], []]
    refused = chat(chat_run[0], "context=1", stdin="hi\n")
    assert (
        refused.returncode == 2
        and "trained with 0 earlier turns" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    too_many = chat(context_run, "context=3", stdin="hi\n")
    assert too_many.returncode == 2 and "give 0 to 2" in too_many.stderr


def test_chitchat_run_reports_word_metrics(chat_run):
    _, metrics = chat_run
    assert {"val/loss", "val/ppl", "val/acc", "val/token_acc", "val/bleu"} <= set(metrics)
    assert metrics["val/ppl"] > 1


def chat(run, *args, stdin):
    return run_module("seq2seq.chat", f"checkpoint={run}", *args, stdin=stdin)


@pytest.mark.slow
def test_chat_answers_each_line_of_standard_input(chat_run):
    run, _ = chat_run
    result = chat(run, "strategy=greedy", 'skip=["<unk>"]', stdin="hi !\n\nhow are you ?\n")
    assert_ok(result)
    replies = result.stdout.split("\n")[:-1]
    assert len(replies) == 2 and "you>" not in result.stdout  # piped: replies only, no prompt
    model, saved = ckpt.read_model(run / "best.pt")
    from seq2seq.tasks.codec import codec_from_state

    codec = codec_from_state(saved["task"])
    x, lengths = codec.encode(["HI!"])  # lower-cased and split like the training data
    how = decoding.resolve({"strategy": "greedy"}, "seq2seq")
    ids = model.generate(x, codec.start_id, codec.steps, lengths=lengths, how=how, skip_ids=[codec.unk_id])
    assert replies[0] == codec.decode(ids[0].tolist())
    assert "<unk>" not in result.stdout


def test_chat_keeps_going_after_a_message_it_cannot_take(chat_run):
    run, _ = chat_run
    result = chat(run, stdin="hello\n" + "word " * 30 + "\nbye\n")
    assert_ok(result)
    assert len(result.stdout.split("\n")[:-1]) == 2
    assert "input" in result.stderr and "at most 20" in result.stderr


@pytest.mark.slow
def test_chat_sampling_is_seeded_and_options_are_checked(chat_run):
    run, _ = chat_run
    a = chat(run, "strategy=sample", "seed=3", stdin="hi\nhi\nhi\n")
    b = chat(run, "strategy=sample", "seed=3", stdin="hi\nhi\nhi\n")
    assert_ok(a)
    assert a.stdout == b.stdout
    bad = chat(run, "strategy=nucleus", stdin="hi\n")
    assert bad.returncode == 2 and "strategy='nucleus'" in bad.stderr and "Traceback" not in bad.stderr
    missing = chat(run / "nope.pt", stdin="hi\n")
    assert missing.returncode == 2 and "no such checkpoint" in missing.stderr


def pty_session(run, keys: list[bytes | int], timeout: float = 60.0) -> tuple[str, int]:
    """seq2seq.chat at a terminal (a pseudo-terminal): at the n-th prompt type the n-th keys, or send the
    n-th signal as Ctrl-C does; return the screen's text and the exit status."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the chat, with the pty as its terminal
        # Ctrl-C as at a terminal, even when pytest was started with SIGINT ignored (a background job).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, "-m", "seq2seq.chat", f"checkpoint={run}"])
    screen, deadline, status = b"", time.time() + timeout, None

    def read_until(done, limit: float) -> None:
        nonlocal screen
        end = min(deadline, time.time() + limit)
        while not done() and time.time() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    screen += os.read(fd, 4096)
                except OSError:  # the child has closed its terminal
                    return

    def exited() -> bool:
        nonlocal status
        if status is None:
            reaped, code = os.waitpid(pid, os.WNOHANG)
            status = code if reaped else None
        return status is not None

    for n, key in enumerate(keys, start=1):
        read_until(lambda n=n: screen.count(b"you> ") >= n, timeout)
        assert screen.count(b"you> ") >= n, screen.decode(errors="replace")
        if isinstance(key, bytes):
            os.write(fd, key)
            continue
        # A signal that lands after the prompt but before readline waits for input is lost (CPython's
        # readline checks for signals only while it waits): like a person, press Ctrl-C again.
        for _ in range(3):
            time.sleep(0.5)
            os.kill(pid, key)
            read_until(exited, 5.0)
            if exited():
                break
    read_until(exited, timeout)  # everything until the chat closes the terminal or exits
    end = time.time() + 10
    while not exited() and time.time() < end:
        time.sleep(0.05)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError(f"the chat did not exit:\n{screen.decode(errors='replace')}")
    os.close(fd)
    return screen.decode(errors="replace"), os.waitstatus_to_exitcode(status)


@pytest.mark.slow
def test_the_terminal_loop_has_commands_and_quits_cleanly(tiny_run):
    screen, status = pty_session(tiny_run, [b"12+3\n", b"/help\n", b"/reset\n", b"/quit\n"])
    assert status == 0, screen
    assert screen.count("bot> ") == 1 and "/reset  start over" in screen and "Traceback" not in screen
    screen, status = pty_session(tiny_run, [b"12+3\n", signal.SIGINT])  # Ctrl-C at the prompt
    assert status == 130 and "Traceback" not in screen, screen
    screen, status = pty_session(tiny_run, [b"\x04"])  # Ctrl-D
    assert status == 0 and screen.endswith("you> \r\n"), repr(screen[-40:])


@pytest.mark.slow
def test_chat_input_that_is_not_utf8_is_one_line_and_replies_hold_no_special_tokens(chat_run):
    run, _ = chat_run
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq.chat", f"checkpoint={run}"], input=b"hi !\n\xff\xfe\n", capture_output=True
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("error: standard input is not UTF-8 text")
    from seq2seq.tasks.codec import codec_from_state

    codec = codec_from_state(ckpt.read(run / "best.pt")["task"])
    assert codec.decode([codec.start_id, codec.pad_id, codec.start_id]) == ""  # never "<bos>" in a reply
