"""`python -m seq2seq.explore [root=outputs] [host=127.0.0.1] [port=7860]` (or `seq2seq-explore`): serve the
explorer's page over the runs under root until Ctrl-C."""

from omegaconf import DictConfig

from seq2seq.cli import common as cli
from seq2seq.core.errors import Seq2seqError
from seq2seq.core.extras import require


def run_command(cfg: DictConfig) -> None:
    try:
        cli.check_keys(cfg, cli.ExploreConfig, "seq2seq.explore")
        if not 0 <= cfg.port <= 65535:
            raise cli.ConfigError(f"port={cfg.port}: must be from 0 to 65535 (0: any free port)")
        if cfg.device not in ("auto", "cpu", "cuda"):
            raise cli.ConfigError(f"device={str(cfg.device)[:40]}: must be auto, cpu or cuda")
        require("gradio", "seq2seq-explore")
        from seq2seq.explore.app import Explorer
        from seq2seq.explore.page import launch
        from seq2seq.inference.api import pick_device

        explorer = Explorer(cfg.root, pick_device(None if cfg.device == "auto" else cfg.device), cfg.cache)
        explorer.runs.scan()
    except Seq2seqError as e:
        cli.fail(e)
    try:
        launch(explorer, cfg.host, cfg.port)
    except Seq2seqError as e:
        cli.fail(e)
    except OSError as e:  # the port is taken, the address is not this machine's
        cli.fail(f"cannot serve on {cfg.host}:{cfg.port} ({str(e).splitlines()[0][:160]}); give another port=")


main = cli.command_line("seq2seq.explore", cli.ExploreConfig, "", input_key=None, checkpoint=False)(run_command)

if __name__ == "__main__":
    main()
