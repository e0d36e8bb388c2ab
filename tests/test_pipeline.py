"""The data chain end to end on the demo profile, through Dagster, as a user runs it."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, materialize

from pipelines.data.shards import load_split
from pipelines.definitions import all_assets, all_checks
from tests.conftest import make_resources

CHAIN = ["vegas_clips", "segments", "splits", "spectrogram_stats", "shards"]


def run_chain(profile: Path, data_dir: Path):
    return materialize(
        [*all_assets, *all_checks], resources=make_resources(profile, data_dir), selection=CHAIN
    )


def metadata_of(result, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {name: value.value for name, value in events[-1].metadata.items()}


def shard_digests(data_dir: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((data_dir / "shards").glob("*.tar"))
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    profile = root / "tiny.yaml"
    from tests.conftest import TINY_DEMO

    profile.write_text(TINY_DEMO)
    data_dir = root / "data"
    return profile, data_dir, run_chain(profile, data_dir)


def test_chain_materializes_with_checks(chain):
    _profile, data_dir, result = chain
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} >= {
        "segments_are_finite_and_shaped",
        "split_counts_exact",
        "splits_video_disjoint",
        "shards_readable",
    }
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]

    clips = pd.read_parquet(data_dir / "vegas_clips" / "clips.parquet")
    assert len(clips) == 30 and set(clips.status) == {"ok"}
    splits = pd.read_parquet(data_dir / "splits" / "splits.parquet")
    assert splits.groupby("split").size().to_dict() == {"train": 50, "val": 15, "test": 15}

    # used_videos.csv: every video that gave a segment, with its split, so others can compare or fetch it.
    used = pd.read_csv(data_dir / "splits" / "used_videos.csv")
    per_video = splits.groupby(["clip_id", "split"]).size()
    assert len(used) == len(per_video) and used.segments.sum() == len(splits)
    assert set(used.split) == {"train", "val", "test"} and (used.start_seconds == 0).all()
    assert (used.end_seconds > 1).all() and used.video_id.str.startswith("video_").all()
    split_meta = metadata_of(result, "splits")
    assert split_meta["coverage_clips_obtained"] == 30 and split_meta["coverage_segments_in_splits"] == 80
    assert split_meta["coverage_paper_segments"] == 61345 and split_meta["coverage"].startswith("|")

    assert metadata_of(result, "shards")["preview"].startswith("![first samples of train-000000.tar]")
    meta = metadata_of(result, "segments")
    assert meta["segments"] >= 80 and meta["preview"].startswith("![")
    assert json.loads((data_dir / "spectrogram_stats" / "stats.json").read_text())["segments"] == 50

    train = load_split(sorted((data_dir / "shards").glob("train-*.tar")))
    assert train.frames.shape == (50, 96, 96, 3) and train.mels.shape == (50, 100, 128)
    assert np.isfinite(train.mels.astype(np.float32)).all()
    assert {m["class_name"] for m in train.meta} == {
        "baby_cry",
        "dog",
        "rail_transport",
        "fireworks",
        "water_flowing",
    }
    assert {m["source"].split("/")[0] for m in train.meta} <= {
        "baby_cry",
        "dog",
        "rail_transport",
        "fireworks",
        "water_flowing",
    }


def test_rerun_reuses_everything(chain):
    profile, data_dir, _result = chain
    before = shard_digests(data_dir)
    again = run_chain(profile, data_dir)
    assert again.success
    for key in CHAIN:
        assert metadata_of(again, key)["reused"] is True, key
    assert shard_digests(data_dir) == before


@pytest.mark.slow
def test_same_inputs_give_identical_shards(chain, tmp_path):
    profile, data_dir, _result = chain
    second = run_chain(profile, tmp_path / "data")
    assert second.success
    assert shard_digests(tmp_path / "data") == shard_digests(data_dir)
    assert (tmp_path / "data" / "splits" / "splits.parquet").read_bytes() == (
        data_dir / "splits" / "splits.parquet"
    ).read_bytes()


def test_asset_keys_and_groups():
    groups = {}
    for assets_def in all_assets:
        for key in assets_def.keys:
            groups[key] = assets_def.group_names_by_key[key]
    assert groups[AssetKey("vegas_clips")] == "ingest"
    assert groups[AssetKey("segments")] == "features"
    assert groups[AssetKey("shards")] == "dataset"
