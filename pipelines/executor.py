"""Which Dagster executor runs the steps of a run, chosen by `S2I_EXECUTOR` (DESIGN §6).

- `multiprocess` (default): one process per step on this machine; the `gpu` pool keeps GPU steps one at a time.
  Steps are forked from a forkserver that has already imported Dagster, torch and the step libraries
  (`pipelines/preload.py`), so a step starts in a fraction of a second instead of importing them again: with
  Dagster's default (`spawn`) every one of a demo run's ~60 steps paid that import.
- `in_process`: every step in the run's own process (debugging, profiling).
- `k8s`: dagster-k8s's `k8s_job_executor`, one Kubernetes Job per step; GPU steps request `nvidia.com/gpu`
  through their `dagster-k8s/config` tags (`pipelines.gpu.GPU_OP_TAGS`). dagster_k8s (and the kubernetes
  client) is imported only when this one is chosen, so loading the definitions stays fast everywhere else.
"""

from __future__ import annotations

import os

from dagster import ExecutorDefinition, Field, Noneable, in_process_executor, multiprocess_executor

EXECUTOR_ENV = "S2I_EXECUTOR"
DEFAULT_EXECUTOR = "multiprocess"
EXECUTORS = ("multiprocess", "in_process", "k8s")
PRELOAD_MODULES = ["pipelines.preload"]  # it loads the definitions too


def _forkserver_config(config: dict) -> dict:
    chosen = {"start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}}}
    if config.get("max_concurrent") is not None:
        chosen["max_concurrent"] = config["max_concurrent"]
    return chosen


# Dagster's multiprocess executor, starting steps from a preloaded forkserver; `max_concurrent` is still settable
# in a run's config (default: one step per CPU core).
preloaded_multiprocess_executor = multiprocess_executor.configured(
    _forkserver_config,
    name="multiprocess",
    config_schema={"max_concurrent": Field(Noneable(int), is_required=False, default_value=None)},
)


def select_executor(name: str | None = None) -> ExecutorDefinition:
    """The executor named `name`, or by `S2I_EXECUTOR` when `name` is None; `multiprocess` when neither is set."""
    from_env = name is None
    raw = os.environ.get(EXECUTOR_ENV, "") if from_env else name
    chosen = raw.strip().lower() or DEFAULT_EXECUTOR
    if chosen == "multiprocess":
        return preloaded_multiprocess_executor
    if chosen == "in_process":
        return in_process_executor
    if chosen == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    where = f"{EXECUTOR_ENV}={raw!r}" if from_env else f"executor {raw!r}"
    raise ValueError(f"{where} is not an executor s2i knows; use one of {', '.join(EXECUTORS)}")
