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


def test_youtube_source_takes_cookies_pause_and_the_early_stop(tmp_path):
    import json

    import pytest

    from pipelines.profile import ProfileError, load_profile

    (tmp_path / "manifest.csv").write_text("class_name,ytid,start_seconds,end_seconds\n")
    (tmp_path / "private").mkdir()
    cookies = tmp_path / "private" / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")

    def load(source: str):
        profile = tmp_path / "yt.yaml"
        profile.write_text(f"base: demo\nclasses: {{dog: Dog}}\nsource: {{kind: youtube, {source}}}\n")
        return load_profile(str(profile))

    plain = load("manifest: manifest.csv").source
    assert (plain.cookies, plain.pause_s, plain.max_bot_checks) == (None, 0.0, 20)

    settings = load("manifest: manifest.csv, cookies: private/cookies.txt, pause_s: 2.5, max_bot_checks: 5")
    source = settings.source
    assert (source.cookies, source.pause_s, source.max_bot_checks) == (cookies.resolve(), 2.5, 5)
    # Where the cookies live stays out of every dump of the settings (artifact manifests, fingerprints).
    dumped = settings.model_dump(mode="json")
    assert "cookies" not in dumped["source"] and str(cookies) not in json.dumps(dumped)

    with pytest.raises(
        ProfileError, match=r"source.cookies = .*missing.txt.*does not exist.*Netscape format"
    ):
        load("manifest: manifest.csv, cookies: missing.txt")
    with pytest.raises(ProfileError, match=r"source.cookies = .*is not a file"):
        load("manifest: manifest.csv, cookies: private")
    with pytest.raises(ProfileError, match=r"source.pause_s = -1"):
        load("manifest: manifest.csv, pause_s: -1")
    with pytest.raises(ProfileError, match=r"source.max_bot_checks = -2"):
        load("manifest: manifest.csv, max_bot_checks: -2")
