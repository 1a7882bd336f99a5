"""Orbax checkpoints: save every N steps and at the end, keep N, resume from the latest.

A checkpoint holds the whole TrainState (params, BatchNorm statistics, optimizer state, step)
and a small JSON record (step, epoch, loss). The data pipeline is a pure function of
(seed, step), so the step alone puts a resumed run back on the same data order. Orbax writes
each checkpoint to a temporary folder and renames it when complete, so a kill -9 mid-save
leaves the previous checkpoint intact."""
import os
import signal
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from pipnet_jax.errors import UserError


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be restored; the message names the folder and the cause."""


class Checkpointer:
    def __init__(self, directory: str, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, record: dict) -> None:
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)), force=True)

    def restore(self, abstract_state: Any, step: Optional[int] = None) -> tuple[Any, dict]:
        """The state (shaped and sharded like `abstract_state`) and its record."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore()))
        except Exception as e:  # orbax/tensorstore raise many types for damaged files
            raise CheckpointError(
                f"checkpoint {os.path.join(self.directory, str(step))} cannot be restored "
                f"({type(e).__name__}: {str(e)[:300]}); it is damaged or was written for "
                f"another model/optimizer. Move it away to resume from an older one.") from e
        return restored.state, dict(restored.record)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) for restoring into the layout of `tree`."""
    return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


class PreemptionFlag:
    """Set by SIGTERM / SIGINT so the loop can save a checkpoint and stop cleanly."""

    def __init__(self):
        self.signal: Optional[int] = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    def __bool__(self):
        return self.signal is not None


def load_variables(workdir: str, step: Optional[int] = None) -> tuple[dict, int]:
    """Model variables {'params', 'batch_stats'} of a training workdir's latest (or given)
    checkpoint, without rebuilding the optimizer (inference, export)."""
    directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    if not os.path.isdir(directory):
        raise CheckpointError(f"{workdir} has no checkpoints/ folder: is it a training workdir?")
    steps = sorted(int(d) for d in os.listdir(directory) if d.isdigit())
    if not steps:
        raise CheckpointError(f"no finished checkpoint in {directory}")
    step = steps[-1] if step is None else step
    path = os.path.join(directory, str(step), "state")
    try:
        checkpointer = ocp.StandardCheckpointer()
        # onto this process's first device, whatever mesh wrote it (a pod's checkpoint is
        # evaluated, exported or served on one device)
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        tree = checkpointer.metadata(path).item_metadata.tree
        state = checkpointer.restore(path, jax.tree_util.tree_map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree))
    except Exception as e:
        raise CheckpointError(f"checkpoint {os.path.join(directory, str(step))} cannot be restored "
                              f"({type(e).__name__}: {str(e)[:300]}); it is damaged. Move it away "
                              f"to use an older one.") from e
    return {"params": state["params"], "batch_stats": state["batch_stats"]}, step
