"""Short programs and their printed output, in the spirit of Zaremba and Sutskever's "Learning to
Execute" (2014), section 4.2 of the chapter.

A program is a few lines of Python ending in `print(...)`:

    b=47
    for x in range(3):b+=19
    c=((b*4) if b<60 else (b-31))
    print((c+8))

Grammar (what `generate_program` writes and `run_program` accepts, nothing else):
    program   := statement* 'print(' expr ')'
    statement := NAME '=' expr | NAME ('+=' | '-=') expr | 'for x in range(' SMALL '):' NAME ('+=' | '-=') expr
    expr      := INT | NAME | '(' expr ('+' | '-') expr ')' | '(' expr '*' SMALL ')'
               | '(' expr ' if ' expr ('<' | '>') expr ' else ' expr ')'
SMALL is 2..9. `length` bounds the digits of every literal, `nesting` the depth of expressions.

`run_program` evaluates a program's syntax tree (Python's `ast` parser, no exec/eval) and refuses
every node outside the grammar, so the labels are right by construction and no generated or given
text can run anything else.
"""

import ast
import random
from dataclasses import dataclass

from seq2seq.core.errors import DataError

VARIABLES = "abcdefghij"
SMALL = range(2, 10)


@dataclass
class Generator:
    rng: random.Random
    length: int  # digits of literals: 1..length
    nesting: int  # depth of expressions: 1 is a literal or a variable

    def number(self) -> int:
        digits = self.rng.randint(1, self.length)
        return self.rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)

    def expr(self, names: list[str], depth: int) -> str:
        if depth <= 1 or self.rng.random() < 0.25:
            return self.rng.choice(names) if names and self.rng.random() < 0.5 else str(self.number())
        kind = self.rng.choice(("add", "add", "mul", "if"))
        sub = lambda: self.expr(names, depth - 1)  # noqa: E731
        if kind == "add":
            return f"({sub()}{self.rng.choice('+-')}{sub()})"
        if kind == "mul":
            return f"({sub()}*{self.rng.choice(SMALL)})"
        return f"({sub()} if {sub()}{self.rng.choice('<>')}{sub()} else {sub()})"

    def program(self, statements: int) -> str:
        names: list[str] = []
        lines = []
        for _ in range(statements):
            kind = self.rng.choice(("assign", "update", "loop")) if names else "assign"
            if kind == "assign":
                name = VARIABLES[len(names)] if len(names) < len(VARIABLES) else self.rng.choice(names)
                lines.append(f"{name}={self.expr(names, self.nesting)}")
                if name not in names:
                    names.append(name)
            elif kind == "update":
                lines.append(f"{self.rng.choice(names)}{self.rng.choice(('+=', '-='))}{self.expr(names, self.nesting)}")
            else:
                target, op = self.rng.choice(names), self.rng.choice(("+=", "-="))
                body = self.expr([n for n in names if n != target], self.nesting)
                lines.append(f"for x in range({self.rng.choice(SMALL)}):{target}{op}{body}")
        # The printed expression always reads a variable, so the output depends on the whole program.
        # (the other operand never reads that variable again, so the output is never a trivial a-a).
        shown = self.rng.choice(names)
        if self.nesting > 1:
            others = [n for n in names if n != shown]
            shown = f"({shown}{self.rng.choice('+-')}{self.expr(others, self.nesting - 1)})"
        lines.append(f"print({shown})")
        return "\n".join(lines)


def generate_program(rng: random.Random, length: int = 2, nesting: int = 2, statements: int = 2) -> tuple[str, str]:
    """One program and its printed output."""
    source = Generator(rng, length, nesting).program(rng.randint(1, statements))
    return source, run_program(source)


def generate_programs(num: int, length: int, nesting: int, statements: int, seed: int) -> list[tuple[str, str]]:
    """num distinct programs with their outputs, fixed by the seed. When draws stop finding new programs (the
    grammar's space is spent: many more draws since the last new one than programs found), it says so at once
    rather than drawing 50 times num."""
    rng = random.Random(seed)
    seen: dict[str, str] = {}
    since_new = 0
    for _ in range(50 * num):
        source, output = generate_program(rng, length, nesting, statements)
        if source in seen:
            since_new += 1
            if since_new > 20 * len(seen) + 10_000:
                break
            continue
        seen[source], since_new = output, 0
        if len(seen) == num:
            return list(seen.items())
    raise DataError(
        f"task.num_examples={num}: about {len(seen)} distinct programs exist with length={length}, "
        f"nesting={nesting}, statements={statements} (ask for fewer, or raise them)"
    )


class Refused(DataError):
    pass


def run_program(source: str) -> str:
    """What the program prints, computed from its syntax tree. Raises Refused (a DataError) for
    anything outside the grammar, a syntax error, or an undefined variable."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise Refused(f"line {e.lineno}: not a program of the grammar ({e.msg})") from None
    env: dict[str, int] = {}
    out = []
    body = tree.body
    if not body or not is_print(body[-1]):
        raise Refused("a program ends with print(...)")
    for node in body[:-1]:
        statement(node, env)
    out.append(str(expr(body[-1].value.args[0], env)))
    return "\n".join(out)


def is_print(node) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "print"
        and len(node.value.args) == 1
        and not node.value.keywords
    )


def refuse(node, what: str = "") -> Refused:
    text = ast.unparse(node) if isinstance(node, ast.AST) else str(node)
    return Refused(f"line {getattr(node, 'lineno', '?')}: {what or 'not in the grammar'}: {text[:60]!r}")


def name_of(node) -> str:
    if isinstance(node, ast.Name) and node.id in VARIABLES:
        return node.id
    raise refuse(node, "not a variable of the grammar")


def statement(node, env: dict[str, int]) -> None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        env[name_of(node.targets[0])] = expr(node.value, env)
    elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add | ast.Sub):
        update(node, env)
    elif (
        isinstance(node, ast.For)
        and isinstance(node.target, ast.Name)
        and node.target.id == "x"
        and isinstance(node.iter, ast.Call)
        and isinstance(node.iter.func, ast.Name)
        and node.iter.func.id == "range"
        and len(node.iter.args) == 1
        and small(node.iter.args[0])
        and len(node.body) == 1
        and isinstance(node.body[0], ast.AugAssign)
        and not node.orelse
    ):
        for _ in range(node.iter.args[0].value):
            statement(node.body[0], env)
    else:
        raise refuse(node)


def update(node: ast.AugAssign, env: dict[str, int]) -> None:
    name = name_of(node.target)
    if name not in env:
        raise refuse(node, "variable used before it is set")
    value = expr(node.value, env)
    env[name] = env[name] + value if isinstance(node.op, ast.Add) else env[name] - value


def small(node) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value in SMALL


def expr(node, env: dict[str, int]) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return node.value
    if isinstance(node, ast.Name):
        name = name_of(node)
        if name not in env:
            raise refuse(node, "variable used before it is set")
        return env[name]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        a, b = expr(node.left, env), expr(node.right, env)
        return a + b if isinstance(node.op, ast.Add) else a - b
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and small(node.right):
        return expr(node.left, env) * node.right.value
    if (
        isinstance(node, ast.IfExp)
        and isinstance(node.test, ast.Compare)
        and len(node.test.ops) == 1
        and isinstance(node.test.ops[0], ast.Lt | ast.Gt)
    ):
        a, b = expr(node.test.left, env), expr(node.test.comparators[0], env)
        holds = a < b if isinstance(node.test.ops[0], ast.Lt) else a > b
        return expr(node.body if holds else node.orelse, env)
    raise refuse(node)
