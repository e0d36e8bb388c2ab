"""What the assets declare about where they run: the GPU concurrency pool, and each kind of step's pod.

Plain data, no Dagster import, so that a test or a script can read it without loading the definitions.

- `GPU_POOL`: the instance's `gpu` pool holds one slot per GPU (times `S2I_STEPS_PER_GPU`, default 1): `make demo`
  / `make dev` and the compose daemon count the GPUs, so on one machine as many GPU steps run at once as there
  are GPUs, each on its own (`pipelines/devices.py` leases it), while CPU steps go on beside them.
- `GPU_OP_TAGS` and `CPU_OP_TAGS`: `dagster-k8s/config` tags, read by dagster-k8s (`k8s_job_executor`) and ignored
  by every other executor. They size a step's pod. dagster-k8s merges, last one winning key by key: the run
  launcher's config, then the code location's (the Helm values' user deployment, `includeConfigInLaunchedRuns`:
  its env, volumes and `resources`), then these tags. So a step without tags asks for what the code server asks
  for (little), and these tags replace `cpu` and `memory` with what their kind of step needs
  (tests/test_deploy.py checks the merge through dagster-k8s's own classes).
"""

from __future__ import annotations

from typing import Any

GPU_POOL = "gpu"

GPU_RESOURCE = "nvidia.com/gpu"

# Training and evaluation (autoencoder_*, audio_embeddings_*, gan_*, informativity_*): one GPU, requested and
# limited (Kubernetes needs request == limit for extended resources), on a node with the usual `nvidia.com/gpu`
# taint. Beside it, what feeding that GPU takes: a training split is held in memory as uint8/float16 tensors (the
# VEGAS subset's is ~3 GB, read from the shards before it moves to the GPU) next to torch's CUDA context and
# the checkpoints, hence 16 GiB; 4 cores keep loading, augmentation and checkpointing off the critical path.
# A request the step really uses keeps the scheduler from packing it beside other work and the kubelet from
# evicting it first under memory pressure; there is no memory limit, so a larger profile is not OOM-killed.
# S2I_REQUIRE_GPU=1: a GPU pod whose GPU is unusable (driver, device plugin) fails at once instead of training on
# the CPU. Its pod sees one GPU, so its lease (pipelines/devices.py) is that one.
GPU_OP_TAGS: dict[str, Any] = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi", GPU_RESOURCE: "1"},
                "limits": {GPU_RESOURCE: "1"},
            },
            "env": [{"name": "S2I_REQUIRE_GPU", "value": "1"}],
        },
        "pod_spec_config": {
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
}

# Extraction and packing (segments, shards): one ffmpeg per clip in a pool of `workers` processes, then a split's
# frames and log-mels gathered into shards. Cores for the pool, memory for a split being packed; no GPU, so these
# pods land on CPU nodes.
CPU_OP_TAGS: dict[str, Any] = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "8Gi"},
            },
        },
    }
}

# Which ready step the multiprocess executor starts first when slots are short (Dagster's `dagster/priority` op
# tag, higher first; 0 by default). An embedding dimension's GAN cannot start before its autoencoder, its
# embeddings and their checks: running all of those first keeps every slot busy with GANs afterwards, where
# a GAN started early would leave the last autoencoder, and then its GAN, running alone at the end.
PRIORITY_TAG = "dagster/priority"
EMBEDDING_PRIORITY = 2  # autoencoder_{dim}, audio_embeddings_{dim} and their checks
GAN_PRIORITY = 1  # gan_{dim} and its checks


def with_priority(tags: dict[str, Any], priority: int) -> dict[str, Any]:
    """`tags` plus the executor's priority tag."""
    return {**tags, PRIORITY_TAG: str(priority)}
