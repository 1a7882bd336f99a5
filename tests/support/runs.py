"""The command line of a `python -m pipnet_jax.main` run on a prepared synthetic set."""
import sys


def main_command(config: str, workdir, data_dir, *flags) -> list:
    return [sys.executable, "-m", "pipnet_jax.main", "--config", config, f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", *flags]
