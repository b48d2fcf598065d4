"""Draw the package layers of src/seq2seq and the imports between them, read from the code (as
tests/test_layout.py reads them), to a PNG: `python scripts/layer_map.py docs/layers.png`.

Each package is a box in its layer's row, lowest layer at the bottom, with its modules listed; an arrow from
one package to another is at least one import, labelled with how many modules of the first import the second.
"""

import argparse
import ast
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "seq2seq"
ROWS = [["cli"], ["explore"], ["inference"], ["training"], ["tasks"], ["models"], ["data"], ["core"]]
ROLE = {
    "cli": "console entry points: Hydra wiring",
    "explore": "the explorer's web page",
    "inference": "using a trained model",
    "training": "the loop, run directories, resume",
    "tasks": "data, batches, loss, metrics",
    "models": "the model families",
    "data": "readers and generators",
    "core": "checks, files, registry, threads",
}


def package_imports() -> Counter:
    """(importing package, imported package) -> how many modules of the first import the second."""
    edges = Counter()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        if len(rel) < 2 or rel[-1] == "__main__.py":
            continue
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seq2seq."):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("seq2seq.")]
            targets |= {n.split(".")[1] for n in names if (SRC / n.split(".")[1]).is_dir()}
        for target in targets - {rel[0]}:
            edges[(rel[0], target)] += 1
    return edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="PNG file to write")
    args = parser.parse_args()
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(9, 10))
    ax = fig.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, len(ROWS) * 1.25)
    ax.axis("off")
    where = {}
    for r, row in enumerate(ROWS):
        y = (len(ROWS) - 1 - r) * 1.25 + 0.15
        for package in row:
            modules = sorted(p.stem for p in (SRC / package).glob("*.py") if p.stem not in ("__init__", "__main__"))
            box = FancyBboxPatch((3.2, y), 6.4, 0.85, boxstyle="round,pad=0.02", fc="#eef3fb", ec="#34548a")
            ax.add_patch(box)
            ax.text(3.35, y + 0.62, f"{package}/", fontsize=11, weight="bold", color="#1c355e")
            ax.text(4.6, y + 0.62, ROLE[package], fontsize=9, color="#444")
            lines, line = [], ""
            for name in modules:  # wrapped between names
                if len(line) + len(name) + 2 > 78:
                    lines.append(line.rstrip(", "))
                    line = ""
                line += f"{name}, "
            lines.append(line.rstrip(", "))
            ax.text(3.35, y + 0.1, "\n".join(lines), fontsize=7.5, family="monospace", color="#333")
            where[package] = y
    edges = package_imports()
    for n, (a, b) in enumerate(sorted(edges, key=lambda e: (where[e[0]], where[e[1]]))):
        ya, yb = where[a] + 0.42, where[b] + 0.42
        color = "#b22222" if yb > ya else "#5a6f8f"  # an arrow up would be a layering fault
        lane = 3.0 - 0.13 * n  # each import its own lane, left of the boxes
        ya, yb = ya + 0.03 * (n % 6) - 0.08, yb - 0.03 * (n % 6) + 0.08
        ax.plot([3.2, lane, lane], [ya, ya, yb], color=color, lw=0.8)
        ax.annotate("", xy=(3.2, yb), xytext=(lane, yb), arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8,
                                                                     "shrinkA": 0, "shrinkB": 0})  # fmt: skip
    ax.text(0.1, len(ROWS) * 1.25 - 0.2, "imports point down\n(arrows: package -> package)", fontsize=8, color="#555",
            va="top")  # fmt: skip
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: {len(edges)} package-to-package imports, none upward"
          if all(where[b] < where[a] for a, b in edges) else f"wrote {args.out}: UPWARD imports present")  # fmt: skip


if __name__ == "__main__":
    main()
