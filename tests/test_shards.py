import hashlib
import json

import numpy as np
import pytest
import webdataset as wds

from pipelines.data.shards import Sample, load_split, sample_key, write_shard


def make_samples(count: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [
        Sample(
            key=sample_key(f"dog-video_{i:05d}", i % 10),
            mel=rng.normal(size=(100, 128)).astype(np.float16),
            frame=rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8),
            meta={
                "clip_id": f"dog-video_{i:05d}",
                "class_name": "dog",
                "segment": i % 10,
                "source": f"dog/{i}.mp4",
            },
        )
        for i in range(count)
    ]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("frame_format", ["npy", "png"])
def test_shard_bytes_are_reproducible_and_roundtrip(tmp_path, frame_format):
    samples = make_samples(12)
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    write_shard(first, samples, frame_format)
    write_shard(second, make_samples(12), frame_format)
    assert sha256(first) == sha256(second)
    assert not list(tmp_path.glob(".tmp-*"))

    loaded = load_split([first])
    assert loaded.frames.shape == (12, 96, 96, 3) and loaded.frames.dtype == np.uint8
    assert loaded.mels.shape == (12, 100, 128) and loaded.mels.dtype == np.float16
    for index, sample in enumerate(samples):
        np.testing.assert_array_equal(loaded.frames[index], sample.frame)
        np.testing.assert_array_equal(loaded.mels[index], sample.mel)
        assert loaded.meta[index] == sample.meta


def test_webdataset_reads_what_we_write(tmp_path):
    samples = make_samples(5)
    write_shard(tmp_path / "train-000000.tar", samples)
    read = list(wds.WebDataset(str(tmp_path / "train-000000.tar"), shardshuffle=False).decode())
    assert [r["__key__"] for r in read] == [s.key for s in samples]
    np.testing.assert_array_equal(read[2]["frame.npy"], samples[2].frame)
    assert read[2]["json"] == samples[2].meta
    with open(tmp_path / "train-000000.tar", "rb") as stream:
        import tarfile

        members = tarfile.open(fileobj=stream).getmembers()
    assert {m.mtime for m in members} == {0} and {m.uname for m in members} == {""}


def test_keys_have_no_dots():
    assert "." not in sample_key("dog-video.00012", 3)
    assert sample_key("dog-video_00012", 3) == "dog-video_00012_w003"


def test_inconsistent_shard_is_an_error(tmp_path):
    import io
    import tarfile

    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        payload = json.dumps({"clip_id": "x"}).encode()
        info = tarfile.TarInfo("x_w000.json")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ValueError, match="inconsistent"):
        load_split([path])
