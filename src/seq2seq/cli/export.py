"""`python -m seq2seq.export checkpoint=<run> out=<dir> [format=onnx] [push=<user/repo>]` (or
`seq2seq-export`): a trained model as a folder to share (seq2seq.inference.pretrained), with ONNX graphs for
serving without PyTorch (seq2seq.inference.serving), uploaded to the Hugging Face Hub with push=."""

from pathlib import Path

from omegaconf import DictConfig

from seq2seq.cli import common as cli
from seq2seq.core.extras import require


def push(folder: Path, repo: str) -> str:
    """Upload the folder to the Hub repository `repo` (made if missing); the URL of the commit."""
    hub = require("huggingface_hub", "push=")
    api = hub.HfApi()
    try:
        api.create_repo(repo, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="Upload a seq2seq model")
    except Exception as e:  # no network, no login, no such user: the Hub's own words, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise cli.ConfigError(f"push={repo}: the upload failed ({first[:160]})") from None
    return str(getattr(info, "commit_url", info))


def run(cfg: DictConfig) -> Path:
    from seq2seq.inference import pretrained

    cli.check_keys(cfg, cli.ExportConfig, "seq2seq.export")
    if cfg.format not in ("safetensors", "onnx"):
        raise cli.ConfigError(f"format={str(cfg.format)[:40]}: must be safetensors or onnx")
    if cfg.push is not None and (not isinstance(cfg.push, str) or cfg.push.count("/") != 1):
        raise cli.ConfigError(f"push={str(cfg.push)[:80]}: name a Hub repository as <user or organisation>/<name>")
    file = cli.checkpoint_file(cfg.checkpoint)
    out = Path(cfg.out) if cfg.out else Path("exported") / (file if file.is_dir() else file.parent).name
    if cfg.format == "onnx":
        from seq2seq.inference import serving

        require("onnxruntime", "format=onnx")
        require("onnx", "format=onnx")
        folder = serving.export(file, out)
    else:
        folder = pretrained.save(file, out)
    print(f"{folder}: {', '.join(sorted(p.name for p in folder.iterdir()))} (from {file})")
    if cfg.push:
        print(f"pushed to https://huggingface.co/{cfg.push}: {push(folder, cfg.push)}")
    return folder


main = cli.command_line("seq2seq.export", cli.ExportConfig, "checkpoint=latest out=my-model", input_key=None)(run)

if __name__ == "__main__":
    main()
