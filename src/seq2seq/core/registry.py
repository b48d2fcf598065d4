"""Every model, task and task-state codec of the project, registered where it is defined:

    @register_model("seq2seq")          # configs/model/*.yaml build on /schema/model/seq2seq
    class Seq2seq(nn.Module): ...

    @register_task("addition")          # configs/task/addition.yaml builds on /schema/task/addition
    class AdditionTask: ...

Every table the project keeps of them (config schemas, the classes a checkpoint may name, the families a
task serves, the explorer's view of a run, the extras a config needs) is derived from these registries,
never written by hand. `seq2seq.models` and `seq2seq.tasks` import each of their modules, so reading a
table from there sees every class.

A checkpoint names its model by class name and a saved config its task by `_target_`: both are looked up
here as strings, so nothing read from a file is ever imported or instantiated by name.

The families a model or task belongs to ("seq2seq", "captioner", "lm") are declared once, with what is
true of each, in FAMILIES below.
"""

from dataclasses import dataclass

MODELS: dict[str, type] = {}  # config name -> model class
TASKS: dict[str, type] = {}  # config name -> task class
CODECS: dict[str, type] = {}  # a task state's kind (checkpoint["task"]["kind"]) -> its codec class


def _register(table: dict[str, type], what: str, attribute: str):
    def decorator(name: str):
        def add(cls: type) -> type:
            if table.get(name, cls) is not cls:
                raise ValueError(f"two {what}s named {name!r}: {table[name].__name__} and {cls.__name__}")
            setattr(cls, attribute, name)
            table[name] = cls
            return cls

        return add

    return decorator


register_model = _register(MODELS, "model", "config_name")
register_task = _register(TASKS, "task", "config_name")
register_codec = _register(CODECS, "codec", "kind")


def target(cls: type) -> str:
    """The `_target_` of a registered model or task in a config: `seq2seq.models.<Class>` or
    `seq2seq.tasks.<Class>` (each package exposes its registered classes by name)."""
    package = "models" if cls in MODELS.values() else "tasks"
    return f"seq2seq.{package}.{cls.__name__}"


def by_target(value) -> type | None:
    """The registered model or task a config's `_target_` names (a string comparison), or None."""
    return next((cls for cls in (*MODELS.values(), *TASKS.values()) if target(cls) == value), None)


def model_by_class_name(name: str) -> type | None:
    """The registered model of a checkpoint's spec, by class name (`Seq2seq`), or None."""
    return next((cls for cls in MODELS.values() if cls.__name__ == name), None)


@dataclass(frozen=True)
class Family:
    """What kind of model: what it takes and gives, and how it is described to a user."""

    name: str
    words: str  # in a sentence: "an Encoder-Decoder"
    inputs: str  # what a shared model's config.json says it takes
    generate_inputs: tuple[str, ...]  # seq2seq.generate's input options for it
    example: str  # its seq2seq.generate input in examples
    api_example: str  # its Python API call in examples
    continues: bool = False  # a language model: it continues a prompt, else it answers each input


FAMILIES = {
    family.name: family
    for family in (
        Family("seq2seq", "an Encoder-Decoder", "text questions (one line each)", ("question", "file", "index"),
               "question=16+75", 'model.generate("16+75")'),
        Family("captioner", "an image captioner", "PNG images", ("question", "file", "index"), "question=digit.png",
               'model.generate("digit.png")'),
        Family("lm", "a language model", "a prompt of words", ("prompt", "file"), "prompt='the market'",
               'model.generate("the market", max_new_tokens=20, seed=1)', continues=True),
    )
}  # fmt: skip


def models_of(family: str) -> list[type]:
    return [cls for cls in MODELS.values() if cls.family == family]


def tasks_of(family: str) -> list[type]:
    return [cls for cls in TASKS.values() if cls.family == family]


def state_kinds(family: str) -> set[str]:
    """The task-state kinds a model of this family can serve: those of its family's tasks' codecs."""
    return {cls.CODEC.kind for cls in tasks_of(family)}
