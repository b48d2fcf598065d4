from pathlib import Path

import numpy
import pytest
import torch
from torch.nn import functional as F

from seq2seq.core.errors import DataError
from seq2seq.data.addition import format_fixed_width, generate_addition, load_fixed_width, main
from seq2seq.models import Seq2seq
from seq2seq.tasks import AdditionTask
from seq2seq.tasks.codec import FixedWidthCodec


def test_generator_matches_the_chapter_format():
    data = generate_addition(5000, max_digits=3, seed=0)
    assert len(data.questions) == 5000
    assert {len(q) for q in data.questions} == {7}
    assert {len(a) for a in data.answers} == {5}
    for q, a in zip(data.questions, data.answers, strict=True):
        x, y = q.split("+")
        assert a.startswith("_")
        assert int(a[1:]) == int(x) + int(y)
        assert q == q.rstrip().ljust(7) and a == a.rstrip().ljust(5)


def test_generator_questions_are_distinct_up_to_order():
    data = generate_addition(5000, seed=1)
    keys = {tuple(sorted(map(int, q.split("+")))) for q in data.questions}
    assert len(keys) == 5000


def test_digit_count_is_uniform_so_small_numbers_are_common():
    data = generate_addition(20000, seed=0)
    operands = [x for q in data.questions for x in q.split("+")]
    lengths = [len(x.strip()) for x in operands]
    share = [lengths.count(d) / len(lengths) for d in (1, 2, 3)]
    # One-digit pairs run out (only 55 exist), so 1-digit operands are rarer than a third, but the
    # 2- and 3-digit shares stay near a third each, far above their 9% and 90% share of 0..999.
    assert 0.25 < share[1] < 0.45 and 0.35 < share[2] < 0.6


def test_generator_is_seeded():
    assert generate_addition(300, seed=3) == generate_addition(300, seed=3)
    assert generate_addition(300, seed=3) != generate_addition(300, seed=4)


def test_generator_refuses_more_questions_than_exist():
    with pytest.raises(DataError, match="distinct questions"):
        generate_addition(100, max_digits=1)


def test_file_round_trip(tmp_path):
    data = generate_addition(200, seed=0)
    path = tmp_path / "addition.txt"
    path.write_text(format_fixed_width(data))
    assert load_fixed_width(path) == data


def test_cli_writes_a_loadable_file(tmp_path, capsys):
    main([str(tmp_path / "a.txt"), "--num-examples", "50", "--seed", "2"])
    assert load_fixed_width(tmp_path / "a.txt") == generate_addition(50, seed=2)
    assert "wrote 50 questions" in capsys.readouterr().out


def test_loader_takes_widths_and_vocabulary_from_the_file(tmp_path):
    path = tmp_path / "copy.txt"
    path.write_text("abc_cba\nbca_acb\nxyz_zyx\nzzz_zzz\n")
    task = AdditionTask(path=str(path), val_fraction=0.25)
    assert task.question_width == 3 and task.answer_width == 4
    assert task.vocab.itos == ["_", "a", "b", "c", "x", "y", "z"]
    assert len(task.x_train) == 3 and len(task.x_val) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("1+1  _2 \n1+2  3  \n", r":2: no '_'"),
        ("1+1  _2 \n1+22 _23 \n", r":2: line is 9 characters wide, line 1 is 8"),
        ("1+1  _2 \n1+2 _3  \n", r":2: '_' at column 5, line 1 has it at column 6"),
        ("_2 \n", r":1: empty question"),
        ("1+1_\n", "empty answer"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_fixed_width(path)
    assert str(path) in str(err.value)


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"1+1  _2 \n1+2  _3\xff\n")
    with pytest.raises(DataError, match=r"latin1.txt:2: not UTF-8"):
        load_fixed_width(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_fixed_width(tmp_path / "nope.txt")


def test_split_is_seeded_45000_5000_shape():
    task = AdditionTask(num_examples=1000, seed=0)
    assert len(task.x_train) == 900 and len(task.x_val) == 100
    again = AdditionTask(num_examples=1000, seed=0)
    assert torch.equal(task.x_val, again.x_val)
    other = AdditionTask(num_examples=1000, seed=1)
    assert not torch.equal(task.x_val, other.x_val)


def test_reverse_flips_the_padded_question():
    plain = AdditionTask(num_examples=200, seed=0)
    reverse = AdditionTask(num_examples=200, seed=0, reverse=True)
    assert torch.equal(reverse.x_train, plain.x_train.flip(1))
    assert torch.equal(reverse.t_train, plain.t_train)
    q = plain.val_questions[0]
    assert plain.vocab.decode(reverse.x_val[0].tolist()) == q[::-1]


def test_epoch_order_depends_on_seed_and_epoch_only():
    task = AdditionTask(num_examples=300, batch_size=50, seed=0, drop_last=False)
    first = task.train_batches(0)
    assert len(first) == 6 and sum(len(x) for x, _ in first) == 270
    assert torch.equal(first[0][0], task.train_batches(0)[0][0])
    assert not torch.equal(first[0][0], task.train_batches(1)[0][0])


def test_validation_metrics_equal_a_recount_with_plain_greedy_decoding():
    """evaluate() reuses the teacher-forced pass for the questions answered right; its metrics must
    equal a recount from `generate` on a model that answers some questions right and some wrong."""
    torch.manual_seed(0)
    task = AdditionTask(num_examples=400, max_digits=2, reverse=True, val_fraction=0.5)
    model = Seq2seq(task.vocab_size, 8, 32, decoder="peeky")
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(70):  # fit the validation questions partly (about half answered right)
        loss = F.cross_entropy(model(task.x_val, task.t_val[:, :-1]).flatten(0, 1), task.t_val[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    metrics, _ = task.evaluate(model)
    target = task.t_val[:, 1:]
    right = model.generate(task.x_val, task.start_id, target.shape[1]) == target
    assert 0.1 < metrics["val/acc"] < 0.9, metrics  # both kinds of rows are present
    assert metrics["val/acc"] == right.all(dim=1).float().mean().item()
    assert metrics["val/char_acc"] == right.float().mean().item()
    with torch.no_grad():
        loss = F.cross_entropy(model(task.x_val, task.t_val[:, :-1]).flatten(0, 1), target.flatten())
    assert metrics["val/loss"] == pytest.approx(loss.item(), rel=1e-6)


def book_split(path: Path, seed: int = 1984) -> tuple[list[str], list[str]]:
    """The book's procedure (dataset/sequence.py of deep-learning-from-scratch-2), restated: numpy's
    global generator seeded, the indices shuffled, the last len // 10 kept for testing."""
    questions = [line[: line.find("_")] for line in path.read_text().splitlines()]
    indices = numpy.arange(len(questions))
    numpy.random.seed(seed)
    numpy.random.shuffle(indices)
    split_at = len(indices) - len(indices) // 10
    return [questions[i] for i in indices[:split_at]], [questions[i] for i in indices[split_at:]]


def test_split_is_the_books_on_its_file_whatever_the_seed(tmp_path):
    path = tmp_path / "addition.txt"
    path.write_text(format_fixed_width(generate_addition(1000, 3, seed=7)))
    book_train, book_test = book_split(path)
    for seed in (0, 5):
        task = AdditionTask(path=str(path), seed=seed)
        assert task.val_questions == book_test
        assert [task.vocab.decode(row) for row in task.x_train.tolist()] == book_train
    # A fixed list, so that a change in numpy's legacy generator would show too.
    path.write_text(format_fixed_width(generate_addition(30, 2, seed=0)))
    assert AdditionTask(path=str(path)).val_questions == book_split(path)[1] == ["2+1  ", "79+9 ", "0+0  "]


def test_split_seed_null_follows_the_training_seed_as_before(tmp_path):
    path = tmp_path / "addition.txt"
    path.write_text(format_fixed_width(generate_addition(500, 3, seed=7)))
    a, b = (AdditionTask(path=str(path), split_seed=None, seed=s).val_questions for s in (0, 1))
    assert a != b and sorted(a) != sorted(b)
    order = torch.randperm(500, generator=torch.Generator().manual_seed(0)).tolist()
    questions = [line[:7] for line in path.read_text().splitlines()]
    assert a == [questions[i] for i in order[450:]]


@pytest.mark.slow
def test_drop_last_gives_the_books_351_steps_an_epoch():
    task = AdditionTask(num_examples=50_000)
    batches = task.train_batches(0)
    assert len(task.x_train) == 45_000 and len(batches) == 351
    assert {len(x) for x, _ in batches} == {128}
    assert len(AdditionTask(num_examples=50_000, drop_last=False).train_batches(0)) == 352
    small = AdditionTask(num_examples=60, batch_size=128)  # fewer questions than a batch: one short batch
    assert [len(x) for x, _ in small.train_batches(0)] == [54]


def test_eval_limit_validates_on_the_first_questions_only():
    full, limited = AdditionTask(num_examples=1000), AdditionTask(num_examples=1000, eval_limit=30)
    assert torch.equal(limited.x_val, full.x_val[:30]) and torch.equal(limited.t_val, full.t_val[:30])
    assert limited.val_questions == full.val_questions[:30]
    assert torch.equal(limited.x_train, full.x_train)


def test_numbers_wider_than_trained_are_refused():
    task = AdditionTask(num_examples=300, max_digits=3)
    assert task.state_dict()["number_digits"] == 3
    codec = FixedWidthCodec.from_state(task.state_dict())
    codec.encode(["999+1"])
    with pytest.raises(DataError, match="1000 has 4 digits; this model was trained on numbers of at most 3"):
        codec.encode(["1000+1"])
    old = {k: v for k, v in task.state_dict().items() if k != "number_digits"}  # a 0.2 checkpoint's state
    assert FixedWidthCodec.from_state(old).encode(["1000+1"])[0].shape == (1, 7)
