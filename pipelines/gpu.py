"""What every asset that trains or runs a network on the GPU declares: its concurrency pool and its pod's GPU.

Plain data, no Dagster import, so that a test or a script can read it without loading the definitions.

- `GPU_POOL`: the instance's `gpu` pool holds one slot per GPU (`make demo` / `make dev` and `docker/dagster.yaml`
  give unconfigured pools a limit of 1), so on one machine GPU steps queue instead of sharing the card and
  running out of memory, while CPU steps (extraction, sharding) go on beside them.
- `GPU_OP_TAGS`: read by dagster-k8s (`k8s_job_executor`) and ignored by every other executor. Each GPU step
  becomes a pod that requests and is limited to one `nvidia.com/gpu` (Kubernetes needs request == limit for
  extended resources) and tolerates the usual `nvidia.com/gpu` taint on GPU nodes.
"""

from __future__ import annotations

from typing import Any

GPU_POOL = "gpu"

GPU_RESOURCE = "nvidia.com/gpu"

GPU_OP_TAGS: dict[str, Any] = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {
                "requests": {GPU_RESOURCE: "1"},
                "limits": {GPU_RESOURCE: "1"},
            }
        },
        "pod_spec_config": {
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
}
