"""The youtube source through Dagster: manifest rows fetched with yt-dlp from a local server."""

import pandas as pd
from dagster import materialize

from pipelines.data.demo import generate_demo
from pipelines.definitions import all_assets, all_checks
from tests.conftest import make_resources
from tests.http_server import MediaServer


def test_youtube_manifest_to_segments(tmp_path):
    served = tmp_path / "served"
    clips = generate_demo(tmp_path / "demo", ["dog", "fireworks"], clips_per_class=2, seed=3)
    served.mkdir()
    for clip in clips:
        (served / f"{clip.class_name}_{clip.path.name}").write_bytes(clip.path.read_bytes())

    with MediaServer(served) as server:
        rows = ["class_name,url,start_seconds,end_seconds"]
        for clip in clips:
            rows.append(f"{clip.class_name},{server.url(f'{clip.class_name}_{clip.path.name}')},0,3")
        rows.append(f"Dog,{server.url('status/404/gone.mp4')},0,3")  # a video that is gone
        manifest = tmp_path / "manifest.csv"
        manifest.write_text("\n".join(rows) + "\n")
        profile = tmp_path / "yt.yaml"
        profile.write_text(
            "base: demo\nclasses: {dog: Dog, fireworks: Fireworks}\n"
            "source: {kind: youtube, manifest: manifest.csv, download_workers: 2, retries: 1}\n"
        )
        resources = make_resources(profile, tmp_path / "data")
        result = materialize(
            [*all_assets, *all_checks], resources=resources, selection=["vegas_clips", "segments"]
        )
    assert result.success

    table = pd.read_parquet(tmp_path / "data" / "vegas_clips" / "clips.parquet")
    assert len(table) == 5
    failed = table[table.status == "failed"]
    assert len(failed) == 1 and failed.reason.iloc[0].startswith("unavailable")
    ok = table[table.status == "ok"]
    assert ok.duration.between(2.5, 3.5).all() and ok.source.str.startswith("http://127.0.0.1").all()

    segments = pd.read_parquet(tmp_path / "data" / "segments" / "segments.parquet")
    assert segments.groupby("clip_id").size().isin([2, 3]).all() and segments.clip_id.nunique() == 4
    skipped = pd.read_parquet(tmp_path / "data" / "segments" / "skipped_clips.parquet")
    assert list(skipped.stage) == ["ingest"]
