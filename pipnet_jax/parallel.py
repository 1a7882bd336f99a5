"""Device mesh, multi-host start-up and host-local -> global batches.

Data parallelism is jax.jit over a Mesh with one axis 'data': the batch is sharded, the
train state replicated, and XLA inserts the cross-device reductions (so BatchNorm statistics
and the loss are over the global batch)."""
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

# Set by launch/*: ask for jax.distributed.initialize() and say where the coordinator is.
ENV_DISTRIBUTED = "PIPNET_DISTRIBUTED"
ENV_COORDINATOR = "PIPNET_COORDINATOR"
ENV_NUM_PROCESSES = "PIPNET_NUM_PROCESSES"
ENV_PROCESS_ID = "PIPNET_PROCESS_ID"


def initialize_distributed() -> None:
    """Starts multi-host JAX when the launcher asks for it (PIPNET_DISTRIBUTED=1).

    On Cloud TPU / SLURM, jax.distributed.initialize() finds its peers itself; the local
    launcher passes coordinator, process count and id explicitly and uses CPU devices, whose
    cross-process collectives need gloo."""
    if os.environ.get(ENV_DISTRIBUTED) != "1" or jax.distributed.is_initialized():
        return
    kwargs = {}
    if os.environ.get(ENV_COORDINATOR):
        kwargs = dict(coordinator_address=os.environ[ENV_COORDINATOR],
                      num_processes=int(os.environ[ENV_NUM_PROCESSES]),
                      process_id=int(os.environ[ENV_PROCESS_ID]))
    if os.environ.get("JAX_PLATFORMS", "") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kwargs)


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over all (global) devices, axis 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def global_batch(local: dict, mesh: Mesh) -> dict:
    """Each host's part of the batch (numpy, leading axis = local batch) -> global jax.Arrays
    sharded over 'data'. The global batch is local batch x process count."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Per-host batch size; the global batch must split evenly over devices and hosts."""
    n_dev, n_proc = mesh.devices.size, jax.process_count()
    if global_batch_size % n_dev:
        raise ValueError(f"train.batch_size={global_batch_size} must be a multiple of the "
                         f"number of devices ({n_dev})")
    return global_batch_size // n_proc
