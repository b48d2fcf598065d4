"""Program generator and restricted evaluator (the `programs` task)."""

import ast
import contextlib
import io
import random

import pytest

from seq2seq.data.programs import Refused, generate_program, generate_programs, run_program
from seq2seq.tasks import ProgramsTask


def python_output(source: str) -> str:
    """The independent oracle: CPython itself runs the (trusted, generated) program."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<program>", "exec"), {})
    return out.getvalue().rstrip("\n")


def depth(node) -> int:
    """Expression depth as the generator counts it: literals and variables are 1."""
    if isinstance(node, ast.BinOp):
        return 1 + max(depth(node.left), depth(node.right))
    if isinstance(node, ast.IfExp):
        parts = [node.test.left, node.test.comparators[0], node.body, node.orelse]
        return 1 + max(depth(p) for p in parts)
    return 1


@pytest.mark.parametrize(("length", "nesting", "statements"), [(1, 1, 1), (2, 1, 3), (2, 2, 3), (3, 3, 4)])
def test_outputs_match_python_and_parameters_are_respected(length, nesting, statements):
    for seed in range(150):
        source, output = generate_program(random.Random(seed), length, nesting, statements)
        assert output == python_output(source), source
        tree = ast.parse(source)
        assert 2 <= len(tree.body) <= statements + 1
        numbers = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
        assert all(0 <= v < 10**length or 2 <= v <= 9 for v in numbers), source
        expressions = [n.value for n in tree.body if isinstance(n, ast.Assign | ast.AugAssign)]
        expressions += [n.body[0].value for n in tree.body if isinstance(n, ast.For)]
        expressions.append(tree.body[-1].value.args[0])
        assert max(depth(e) for e in expressions) <= nesting, source


def test_generated_sets_are_distinct_and_seeded():
    a = generate_programs(300, 2, 2, 3, seed=1)
    assert len({s for s, _ in a}) == 300
    assert a == generate_programs(300, 2, 2, 3, seed=1)
    assert a != generate_programs(300, 2, 2, 3, seed=2)


@pytest.mark.parametrize(
    "source",
    [
        "import os\nprint(1)",
        "print(__import__('os'))",
        "a=1\nprint(a.real)",
        "print(open('x'))",
        "a=[1]\nprint(a)",
        "while 1:a=1\nprint(1)",
        "a=4\nprint((a/2))",
        "a=4\nprint((a*a))",
        "a=1\nfor x in range(100):a+=1\nprint(a)",
        "a=1\nfor i in range(3):a+=1\nprint(a)",
        "print(b)",
        "a=1",
        "print((1 if 1==1 else 2))",
        "def f():\n  return 1\nprint(1)",
        "a=-1\nprint(a)",
        "k=1\nprint(k)",
        "print(",
        "a=1\nprint(a, a)",
    ],
)
def test_evaluator_refuses_anything_outside_the_grammar(source):
    with pytest.raises(Refused):
        run_program(source)


def test_programs_task_pairs_programs_with_their_output():
    task = ProgramsTask(num_examples=200, length=2, nesting=2, max_length=150, seed=0)
    assert task.codec.mode == "char"
    for source, output in task.tokenized["val"][:20]:
        assert run_program("".join(source)) == "".join(output)
