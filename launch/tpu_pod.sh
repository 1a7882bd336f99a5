#!/usr/bin/env bash
# Cloud TPU VM pod launcher: create the pod, copy this repository to every worker, install,
# and run the same command on all workers with PIPNET_DISTRIBUTED=1 (each worker then calls
# jax.distributed.initialize(), which finds its peers on a TPU pod by itself, and reads its
# own shard of the data).
#
#   launch/tpu_pod.sh create  NAME ZONE [ACCELERATOR=v4-32] [VERSION=tpu-ubuntu2204-base]
#   launch/tpu_pod.sh setup   NAME ZONE          # copy the repo + pip install on all workers
#   launch/tpu_pod.sh run     NAME ZONE -- python -m pipnet_jax.main --config configs/wflw.py --workdir gs://bucket/run
#   launch/tpu_pod.sh delete  NAME ZONE
#
# Data and workdirs must be reachable from every worker (a GCS bucket or a shared disk).
# Not exercised here (no network or TPU on the development machines); the multi-host code
# path it triggers is tested with launch/local.py.
set -euo pipefail
action=${1:?create|setup|run|delete}; name=${2:?TPU name}; zone=${3:?zone}; shift 3
repo_dir=$(cd "$(dirname "$0")/.." && pwd)
case "$action" in
  create)
    gcloud compute tpus tpu-vm create "$name" --zone "$zone" \
      --accelerator-type "${1:-v4-32}" --version "${2:-tpu-ubuntu2204-base}" ;;
  setup)
    gcloud compute tpus tpu-vm scp --recurse --zone "$zone" --worker=all "$repo_dir" "$name":~/pipnet_jax
    gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all --command \
      "cd ~/pipnet_jax && python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && .venv/bin/pip install -q 'jax[tpu]==0.10.2' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html" ;;
  run)
    [ "${1:-}" = "--" ] && shift
    cmd=$(printf '%q ' "$@")
    gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all --command \
      "cd ~/pipnet_jax && PIPNET_DISTRIBUTED=1 .venv/bin/$cmd" ;;
  delete)
    gcloud compute tpus tpu-vm delete "$name" --zone "$zone" --quiet ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
