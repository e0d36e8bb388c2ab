import subprocess
import sys

EXPECTED_ASSETS = {
    "vegas_clips",
    "segments",
    "spectrogram_stats",
    "splits",
    "shards",
    "gan_512",
    "informativity_candidates",
    "informativity_labels",
    "informativity_classifiers",
    "informativity_512",
    "s2i_report",
}


def test_definitions_load_without_torch():
    code = (
        "import sys; import pipelines; d = pipelines.defs; "
        "keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}; "
        "print(sorted(keys)); print('torch' in sys.modules)"
    )
    # A fresh interpreter, as `dagster dev` loads it. How fast: benchmarks/bench_evaluation.py.
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert EXPECTED_ASSETS <= set(eval(out[0]))  # noqa: S307 - our own printed list
    assert out[1] == "False", "loading the definitions imported torch"


# Imported by an asset when it runs, never when `dagster dev` (or any run) loads the code location.
HEAVY_MODULES = ("numpy", "pandas", "pyarrow", "torch", "PIL", "matplotlib")


def test_loading_the_definitions_imports_no_heavy_library():
    code = (
        "import sys, pipelines; pipelines.defs; "
        f"print(sorted(name for name in {HEAVY_MODULES!r} if name in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"loading pipelines.definitions imported {out}"


def test_libraries_do_not_import_dagster():
    code = (
        "import sys, pipelines.data.splits, pipelines.data.shards, pipelines.data.segments, pipelines.data.vegas, "
        "pipelines.media.mp4, pipelines.media.extract, pipelines.media.logmel, pipelines.media.download, "
        "pipelines.data.demo, pipelines.data.manifest, pipelines.profile, pipelines.data.candidates, "
        "pipelines.data.demo.oracle, pipelines.data.report, pipelines.data.answers, pipelines.labelling, "
        "pipelines.data.steps, pipelines.data.training_steps, pipelines.data.evaluation_steps; "
        "print('dagster' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"
