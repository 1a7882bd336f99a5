"""What every benchmark shares: the one timing loop, the one table formatter, and the runner of
a benchmark row in a fresh child process (forced host devices).

    ms = median_ms(lambda: predict(images), warmup=2, repeats=10)
    print(format_table(rows, [Column("batch", "batch"), Column("median ms", "median_ms", ".2f")]))
"""
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax


# --------------------------------------------------------------------------- timing
def time_calls(fn: Callable[[], Any], warmup: int = 2, repeats: int = 10) -> list[float]:
    """Seconds of each of `repeats` calls of fn(), after `warmup` untimed ones (JAX compiles
    there). Every call's result is blocked until ready (jax.block_until_ready: JAX arrays
    are waited for, anything else passes through), so a timed call includes its device work."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return times


def median_ms(fn: Callable[[], Any], warmup: int = 2, repeats: int = 10) -> float:
    """Median wall time of one call of fn() in milliseconds (see time_calls)."""
    return statistics.median(time_calls(fn, warmup, repeats)) * 1e3


# --------------------------------------------------------------------------- tables
class Column(NamedTuple):
    """One column of a table: `value` is a row key or a function of the row; `fmt` a format
    spec for it (".2f"); align "<" or ">" (default: numbers right, text left)."""
    header: str
    value: Union[str, Callable[[dict], Any]]
    fmt: str = ""
    align: str = ""


def format_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A markdown table (padded so that it also reads as plain text), one line per row."""
    cells, aligns = [], []
    for col in columns:
        values = [col.value(r) if callable(col.value) else r[col.value] for r in rows]
        numeric = values and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in values if v is not None)
        aligns.append(col.align or (">" if numeric else "<"))
        cells.append(["" if v is None else format(v, col.fmt) for v in values])
    widths = [max([len(col.header)] + [len(c) for c in column])
              for col, column in zip(columns, cells)]

    def line(texts):
        return "| " + " | ".join(f"{t:{a}{w}}" for t, a, w in zip(texts, aligns, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if a == ">" else "-")
                          for a, w in zip(aligns, widths)) + "|"
    return "\n".join([line([col.header for col in columns]), rule] + [line(row) for row in zip(*cells)])


# --------------------------------------------------------------------------- child processes
def run_child(module: str, flags: Sequence[str], devices: Optional[int]) -> dict:
    """`python -m module flags` in a fresh process (JAX starts anew): on `devices` forced host
    (CPU) devices, or on the default accelerator when None; returns its last stdout line's JSON
    (the child prints its row with print(json.dumps(row)))."""
    env = dict(os.environ)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run([sys.executable, "-m", module, *flags], env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"benchmark row ({devices or 'accelerator'} devices) failed:\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
