"""The layout the contributor's page describes, checked on the code's own imports (read as syntax: nothing is
run): packages by role importing one way, no cycle, a short top level, every table of models and tasks derived
from the registry, small functions."""

import ast
import os
from pathlib import Path

import pytest

from seq2seq.core.registry import MODELS, TASKS, target

SRC = Path(__file__).resolve().parents[1] / "src" / "seq2seq"

# Lower layers never import higher ones. (cli and the top-level commands may import anything.)
LAYERS = {"core": 0, "data": 1, "models": 2, "tasks": 3, "training": 4, "inference": 5, "explore": 6, "cli": 7}
TOP = 8  # seq2seq/__init__.py and the `python -m seq2seq.<command>` modules


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[-1] == "__main__":  # `python -m seq2seq.<package>`: a command, as the top-level ones
        return TOP
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 and (SRC / parts[1]).is_dir() else TOP


def imports(module: str) -> set[str]:
    """Every project module `module` imports, at the top or inside a function (a lazy import is an import)."""
    path = MODULES[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "seq2seq":
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "seq2seq"}
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: imports(m) for m in MODULES}


def test_imports_go_one_way():
    upward = [f"{m} -> {o}" for m, outs in GRAPH.items() for o in outs if layer(o) > layer(m)]
    assert not upward, upward


def test_no_import_cycle():
    seen, on_path, cycles = set(), [], []

    def visit(module: str) -> None:
        on_path.append(module)
        for other in sorted(GRAPH[module]):
            if other in on_path:
                cycles.append([*on_path[on_path.index(other) :], other])
            elif other not in seen:
                visit(other)
        on_path.pop()
        seen.add(module)

    for module in sorted(GRAPH):
        if module not in seen:
            visit(module)
    assert not cycles, cycles[:3]


def test_the_top_level_is_short_and_every_package_says_what_it_owns():
    top = sorted(p.name for p in SRC.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 10, top
    for package in sorted(p for p in SRC.iterdir() if (p / "__init__.py").is_file() and p.name != "configs"):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        assert "Imports:" in doc or (package.name == "cli" and "Imports" in doc), package.name


def test_a_table_of_models_or_tasks_is_never_written_by_hand():
    """A literal collection naming two or more registered models or tasks (by config name, class name or
    `_target_`) outside the registry would be a table to keep in step by hand."""
    names = {n for cls in (*MODELS.values(), *TASKS.values()) for n in (cls.config_name, cls.__name__, target(cls))}
    tables = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict | ast.List | ast.Tuple | ast.Set):
                items = [*getattr(node, "keys", []), *getattr(node, "elts", [])]
                named = {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}
                if len(named) >= 2:
                    tables.append(f"{module}:{node.lineno} {sorted(named)}")
    assert not tables, tables


def test_functions_take_at_most_seven_parameters_and_the_loop_reads_like_fit():
    """Constructors and dataclasses may take more (each parameter a config option); other functions group theirs."""
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name != "__init__":
                args = node.args
                names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
                if len([n for n in names if n not in ("self", "cls")]) > 7:
                    long.append(f"{module}.{node.name}")
    assert not long, long
    loop = (SRC / "training" / "loop.py").read_text().splitlines()
    assert len(loop) <= 250, len(loop)


@pytest.mark.parametrize("kind", ["model", "task"])
def test_the_registry_is_the_one_list(kind):
    """Every registered class has its config schema, a config file built on it, and is reachable by its
    `_target_`; every config file of the group builds a registered class."""
    from hydra import compose, initialize_config_dir

    from seq2seq.core.registry import by_target
    from seq2seq.training.config import CONFIG_DIR, group_options

    table = MODELS if kind == "model" else TASKS
    for name, cls in table.items():
        assert cls.config_name == name and by_target(target(cls)) is cls
        assert group_options(kind, name), f"no configs/{kind}/*.yaml builds {name}"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for path in sorted((CONFIG_DIR / kind).glob("*.yaml")):
            extra = ["task.data_dir=x"] if path.stem == "ptb" else []
            cfg = compose("train", overrides=[f"{kind}={path.stem}", *extra])
            assert by_target(cfg[kind]._target_) in table.values(), path.name


@pytest.mark.slow
def test_the_contributors_walkthroughs_add_a_model_and_a_task_in_one_file_each(tmp_path):
    """The model and the task of docs/contributing.md, their files and YAMLs written into a copy of the
    package, train and generate with nothing else changed."""
    import re
    import shutil
    import subprocess
    import sys

    import seq2seq

    from .helpers import REPO

    page = (REPO / "docs" / "contributing.md").read_text()
    package = tmp_path / "site" / "seq2seq"
    shutil.copytree(Path(seq2seq.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    blocks = re.findall(r"^```(?:py|yaml)\n# src/seq2seq/(\S+)\n(.*?)^```", page, re.S | re.M)
    assert sorted(name for name, _ in blocks) == [
        "configs/model/ngram.yaml", "configs/task/reverse.yaml", "models/ngram.py", "tasks/reverse.py"]  # fmt: skip
    for name, text in blocks:
        assert not (package / name).exists()  # new files, nothing replaced
        (package / name).write_text(text)
    data = tmp_path / "ptb"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_text(" the cat sat on the mat \n a dog ran far away \n" * 30)
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    quick = ["trainer.max_epochs=1", "trainer.progress=false", "trainer.device=cpu"]
    runs = {
        "ngram": ["experiment=rnnlm_ptb", "model=ngram", "model.context=3", f"task.data_dir={data}",
                  "task.batch_size=4", "task.time_size=5", "task.eval_batch_size=2"],
        "reverse": ["task=reverse", "task.num_examples=300", "model.decoder=attention", "model.hidden_size=16",
                    "task.batch_size=16"],
    }  # fmt: skip
    for name, overrides in runs.items():
        run = tmp_path / name
        result = subprocess.run([sys.executable, "-m", "seq2seq.train", *overrides, *quick, f"hydra.run.dir={run}"],
                                capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        question = ["prompt=the cat", "max_new_tokens=4"] if name == "ngram" else ["question=abc"]
        result = subprocess.run([sys.executable, "-m", "seq2seq.generate", f"checkpoint={run}", *question],
                                capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        if name == "ngram":
            assert result.stdout.startswith("the cat ")  # the prompt and its continuation
        else:
            assert result.stdout.count("\n") == 1  # one answer (a reverser of one epoch may answer "")
    help_text = subprocess.run([sys.executable, "-m", "seq2seq.train", "model=ngram", "--help"], capture_output=True,
                               text=True, env=env, cwd=tmp_path).stdout  # fmt: skip
    assert "model.context=4" in help_text and "words read before each prediction" in help_text
