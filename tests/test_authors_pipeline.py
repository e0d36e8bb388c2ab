"""The authors' networks in the pipeline: their classifiers judge a GAN, `s2i translate` runs with their
autoencoder and generator, and profiles that ask for them are validated. The authors' files are written
here in their layout (tests/authors_reference.py) at a small width, under their released names."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from dagster import materialize

from pipelines.profile import ProfileError, load_profile
from s2i_models import authors
from tests.authors_reference import AuthorsAutoencoder, AuthorsClassifier, AuthorsGenerator, randomize
from tests.conftest import TINY_DEMO, make_resources
from tests.test_model_assets import make_sound


def write_authors_models(folder: Path, dims=(512,), width: float = 0.0625) -> Path:
    """A trained_models/ folder with the authors' file names: C1-C5, and an autoencoder and generator."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(authors.CLASSIFIER_FILES):
        # Biased towards "informative" for the first classes, so the scores differ by class.
        model = randomize(AuthorsClassifier(width=0.5), seed=index)
        with torch.no_grad():
            model.fc3.bias.copy_(torch.tensor([0.0, 3.0 - 1.5 * index]))
        torch.save(model.state_dict(), folder / name)
    for dim in dims:
        torch.save(
            randomize(AuthorsAutoencoder(dim, width), seed=dim).state_dict(),
            folder / authors.AUTOENCODER_FILES[dim],
        )
        if dim in authors.GENERATOR_FILES:
            torch.save(
                randomize(AuthorsGenerator(dim, width), seed=dim + 1).state_dict(),
                folder / authors.GENERATOR_FILES[dim],
            )
    return folder


def test_the_authors_classifiers_judge_a_trained_gan(trained, tmp_path):
    import shutil

    from pipelines.definitions import build_assets

    base_profile, trained_data, _ = trained
    data = tmp_path / "data"  # a copy: other modules share the trained chain
    shutil.copytree(trained_data, data, ignore=shutil.ignore_patterns("informativity_*", "s2i_report"))
    models = write_authors_models(tmp_path / "trained_models", dims=())
    profile_path = tmp_path / "authors.yaml"
    profile_path.write_text(
        f"base: {base_profile}\nauthors_models: {models}\n"
        "evaluation: {classifiers: authors, window: [1, 3], moving_average_epochs: 2}\n"
    )
    profile = load_profile(str(profile_path))
    assets, checks = build_assets(profile)
    keys = {key.to_user_string() for a in assets for key in a.keys}
    assert "informativity_labels" not in keys and "informativity_candidates" not in keys
    assert "informativity_classifiers" in keys
    result = materialize(
        [*assets, *checks],
        resources=make_resources(profile_path, data),
        selection=["informativity_classifiers", "informativity_128"],
    )
    assert result.success
    accuracy = pd.read_parquet(data / "informativity_classifiers" / "accuracy.parquet")
    assert accuracy.test_accuracy.tolist() == list(authors.PAPER_CLASSIFIER_ACCURACY)
    assert accuracy.file.tolist() == list(authors.CLASSIFIER_FILES)
    # The judges differ by class (their output biases differ), so the scores must too.
    history = pd.read_parquet(data / "informativity_128" / "history.parquet")
    per_class = history.groupby("class_name").informativity.mean()
    assert per_class["baby_cry"] > per_class["water_flowing"]
    # Re-running with the same files reuses the converted judges.
    again = materialize(
        [*assets, *checks],
        resources=make_resources(profile_path, data),
        selection=["informativity_classifiers"],
    )
    event = again.asset_materializations_for_node("informativity_classifiers")[0]
    assert event.metadata["reused"].value is True
    summary = json.loads((data / "informativity_128" / "summary.json").read_text())
    assert summary["mode"] == "saved checkpoints"  # gan_128 trained before the judges were named

    # A damaged per-checkpoint cache entry is moved aside and recomputed, not fatal.
    cached = sorted((data / "informativity_128" / "per_checkpoint").glob("*.json"))
    cached[0].write_text('{"informativity": ')
    (data / "informativity_128" / "manifest.json").unlink()
    again = materialize(
        [*assets, *checks], resources=make_resources(profile_path, data), selection=["informativity_128"]
    )
    assert again.success
    assert cached[0].with_name(cached[0].name + ".bad").is_file()
    assert json.loads((data / "informativity_128" / "summary.json").read_text()) == summary


def test_a_gan_trained_with_judges_records_informativity_every_epoch(trained, tmp_path):
    import shutil

    from pipelines.definitions import build_assets

    base_profile, trained_data, _ = trained
    data = tmp_path / "data"
    shutil.copytree(
        trained_data, data, ignore=shutil.ignore_patterns("gan_128", "informativity_*", "s2i_report")
    )
    models = write_authors_models(tmp_path / "trained_models", dims=())
    profile_path = tmp_path / "authors.yaml"
    profile_path.write_text(
        f"base: {base_profile}\nauthors_models: {models}\n"
        "evaluation: {classifiers: authors, window: [1, 3], moving_average_epochs: 2}\n"
    )
    assets, checks = build_assets(load_profile(str(profile_path)))
    result = materialize(
        [*assets, *checks],
        resources=make_resources(profile_path, data),
        selection=["gan_128", "informativity_classifiers", "informativity_128"],
    )
    assert result.success
    gan_history = pd.read_parquet(data / "gan_128" / "history.parquet")
    assert gan_history.epoch.tolist() == [1, 2, 3]
    assert gan_history[[f"informativity_{n}" for n in authors.AUTHORS_CLASSES]].notna().all().all()
    gan_metadata = result.asset_materializations_for_node("gan_128")[0].metadata
    assert gan_metadata["informativity_mode"].value.startswith("every epoch")
    assert 0 < gan_metadata["judge_share_of_epoch"].value < 1
    from tests.test_training import _events

    events = _events(Path(gan_metadata["tensorboard_path"].value).parent)
    assert [step for step, _ in events["scalars"]["gan/informativity_dog"]] == [1, 2, 3]
    assert events["images"]["gan/validation_sounds"] == [1, 2, 3]  # the tiny profile checkpoints every epoch
    summary = json.loads((data / "informativity_128" / "summary.json").read_text())
    assert summary["mode"] == "every epoch, in training"
    assert summary["epochs_evaluated"] == [1, 2, 3]
    history = pd.read_parquet(data / "informativity_128" / "history.parquet")
    recorded = gan_history.set_index("epoch")["informativity_dog"]
    dog = history[history.class_name == "dog"].set_index("epoch").informativity
    # Epochs 1 and 2 are the training loop's values; epoch 3 follows the D update of epoch 2 (the tiny
    # profile's discriminator_every is 2), so it is replaced by the mean of the epochs before it.
    assert dog[1] == recorded[1] and dog[2] == recorded[2]
    assert dog[3] == (recorded[1] + recorded[2]) / 2
    # The report renders from partial data and says what is missing: the best epoch's checkpoint is gone
    # (one other is kept), and another dim's evaluation is damaged.
    best_epoch = summary["best_epoch"]
    run = next((data / "gan_128" / "train").iterdir())
    (run / "checkpoints" / f"epoch-{best_epoch:05d}.pt").unlink()
    broken = data / "informativity_256"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    (broken / "manifest.json").write_text((data / "informativity_128" / "manifest.json").read_text())
    report = materialize(
        [*assets, *checks], resources=make_resources(profile_path, data), selection=["s2i_report"]
    )
    assert report.success
    notes = json.loads((data / "s2i_report" / "summary.json").read_text())["notes"]
    assert any("dim 256" in n and "re-materialize informativity_256" in n for n in notes)
    assert any("dim 512: not evaluated yet" in n for n in notes)
    assert any(f"best epoch {best_epoch} has no saved checkpoint" in n for n in notes)
    assert "Missing or partial" in (data / "s2i_report" / "index.html").read_text()


def test_s2i_translate_with_the_authors_networks(tmp_path, capsys):
    from PIL import Image

    from pipelines.cli import main

    models = write_authors_models(tmp_path / "trained_models")
    wav = make_sound(tmp_path / "tone.wav", 2.2)
    out = tmp_path / "grid.png"
    assert main(["translate", wav, "--authors-models", str(models), "-n", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 s x 2 images" in printed and authors.GENERATOR_FILES[512] in printed
    width, height = Image.open(out).size
    assert width > 100 and height > 100
    # The authors released a generator for dim 512 only.
    assert main(["translate", wav, "--authors-models", str(models), "--dim", "256"]) == 2
    assert "sizes [512] only" in capsys.readouterr().err


def test_authors_spectrogram_scale():
    import numpy as np

    from pipelines.media.logmel import AUTHORS_RANGE_NATS, authors_spectrogram

    mels = np.full((1, 100, 128), -5.0, dtype=np.float32)
    mels[0, :, 0] = 2.0  # the lowest band is the loudest
    mels[0, :, 127] = 2.0 - AUTHORS_RANGE_NATS - 1  # more than 80 dB below: silence
    eight_bit = authors_spectrogram(mels)
    assert eight_bit[0, 0, 127] == 255.0  # lowest band -> last row of the authors' image
    assert eight_bit[0, 0, 0] == 0.0
    assert 0 < eight_bit[0, 0, 64] < 255


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("evaluation: {classifiers: authors}", "need authors_models"),
        ("autoencoder: {pretrained: authors}\nauthors_models: /x", "needs source kind s2i_data"),
        (
            "classes: {dog: Dog, cat: Cat}\nsource: {kind: local, root: /x}\nauthors_models: /x\n"
            "evaluation: {classifiers: authors}",
            "judge only",
        ),
    ],
)
def test_profiles_asking_for_the_authors_networks_are_checked(tmp_path, extra, message):
    path = tmp_path / "p.yaml"
    path.write_text("base: vegas\n" + extra + "\n")
    with pytest.raises(ProfileError, match=message):
        load_profile(str(path))


def test_authors_models_path_is_relative_to_the_profile(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(TINY_DEMO + "authors_models: models/trained_models\nevaluation: {classifiers: authors}\n")
    assert load_profile(str(path)).authors_models == (tmp_path / "models" / "trained_models").resolve()
    assert json.loads(json.dumps(str(load_profile(str(path)).authors_models)))


def test_the_paper_route_from_the_authors_data_and_networks(tmp_path):
    """`base: paper` on a tiny s2i_data clone: the authors' autoencoder stands in for autoencoder_128 (its
    embeddings are the authors' encoder on the authors' bytes), the GAN trains on them and is judged by C1-C5
    at every epoch, and the report renders."""
    import numpy as np

    from pipelines.definitions import build_assets
    from tests.test_s2i_data import make_segments, write_clone

    root = tmp_path / "s2i_data"
    segments = make_segments()
    write_clone(root, segments)
    models = write_authors_models(tmp_path / "trained_models", dims=(128,))
    profile_path = tmp_path / "paper.yaml"
    profile_path.write_text(
        f"base: paper\nsource: {{kind: s2i_data, root: {root}}}\nauthors_models: {models}\nworkers: 1\n"
        "shards: {samples_per_shard: 16}\n"
        "gan: {width: 0.0625, epochs: 2, batch_size: 5, discriminator_every: 2, checkpoint_every: 1, compile: false,"
        " collapse_check: warn}\n"
        "evaluation: {window: [1, 2], moving_average_epochs: 2}\n"
    )
    profile = load_profile(str(profile_path))
    assert profile.autoencoder.pretrained == "authors" and profile.evaluation.classifiers == "authors"
    assets, checks = build_assets(profile)
    data = tmp_path / "data"
    selection = [
        "vegas_clips", "segments", "splits", "spectrogram_stats", "shards", "autoencoder_128",
        "audio_embeddings_128", "gan_128", "informativity_classifiers", "informativity_128", "s2i_report",
    ]  # fmt: skip
    result = materialize(
        [*assets, *checks], resources=make_resources(profile_path, data), selection=selection
    )
    assert result.success

    # The stand-in is the authors' network: its embeddings of the authors' spectrograms are theirs.
    reference = randomize(AuthorsAutoencoder(128, 0.0625), seed=128)
    keys = pd.read_parquet(data / "audio_embeddings_128" / "test_keys.parquet")
    embeddings = np.load(data / "audio_embeddings_128" / "test.npy")
    by_key = {(f"c{s.class_id:03d}_s{s.video_id:05d}", s.window): s for s in segments}
    spectrograms = np.stack([by_key[(r.clip_id, r.segment)].spectrogram for r in keys.itertuples()])
    with torch.no_grad():
        theirs = reference.encode(torch.from_numpy(spectrograms).float()[:, None] / 127.5 - 1).numpy()
    np.testing.assert_allclose(embeddings, theirs, rtol=1e-4, atol=1e-5)
    ae_metadata = result.asset_materializations_for_node("autoencoder_128")[0].metadata
    assert ae_metadata["pretrained"].value == "authors" and ae_metadata["authors_epoch"].value == 1999

    summary = json.loads((data / "informativity_128" / "summary.json").read_text())
    assert summary["mode"] == "every epoch, in training" and summary["epochs_evaluated"] == [1, 2]
    page = (data / "s2i_report" / "index.html").read_text()
    used = pd.read_csv(data / "splits" / "used_videos.csv")
    assert f"data: {used.segments.sum()} one-second segments" in page and "of the paper's 61,345" in page


def test_s2i_report_cli_on_partial_and_damaged_summaries(tmp_path, capsys):
    from pipelines.cli import main

    folder = tmp_path / "s2i_report"
    folder.mkdir()
    partial = {
        "window": [500, 4000],
        "best_dim": 512,
        "dims": {"512": {"window_average": {"average": None}, "baseline": {"average": 0.0}}},
        "notes": ["dim 128: not evaluated yet (materialize informativity_128)"],
    }
    (folder / "summary.json").write_text(json.dumps(partial))
    assert main(["report", "--data-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "No evaluated epoch of any dim falls in the window 500-4000" in printed
    assert "dim 128: not evaluated yet" in printed
    (folder / "summary.json").write_text("{")
    assert main(["report", "--data-dir", str(tmp_path)]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_s2i_authors_check_recomputes_the_published_embeddings(tmp_path, capsys):
    """A clone whose embeddings_128 batches hold what the authors' encoder gives for their spectrograms:
    `s2i authors check` matches them; the same clone with one embedding changed is reported as differing."""
    import numpy as np

    from pipelines.cli import main
    from pipelines.data.s2i_data import embedding_dtype
    from tests.test_s2i_data import make_segments, write_clone

    root = tmp_path / "s2i_data"
    segments = [s for s in make_segments() if s.split == "test"]
    write_clone(root, segments)
    models = write_authors_models(tmp_path / "trained_models", dims=(128, 256))
    reference = randomize(AuthorsAutoencoder(128, 0.0625), seed=128)
    spectrograms = torch.from_numpy(np.stack([s.spectrogram for s in segments])).float()[:, None]
    with torch.no_grad():
        embeddings = reference.encode(spectrograms / 127.5 - 1).numpy()  # the authors' Normalize(0.5, 0.5)
    folder = root / "batches" / "audio_visual" / "embeddings_128_to_images_audioautoencoder_72_1-2"
    folder.mkdir(parents=True)
    records = np.zeros(len(segments), dtype=embedding_dtype(128))
    records["label"] = [s.label for s in reversed(segments)]  # another order than the spectrograms'
    records["embedding"] = embeddings[::-1]
    records["image"] = [s.image for s in reversed(segments)]
    (folder / "test_batch_001.bin").write_bytes(records.tobytes())
    arguments = ["authors", "check", "--data", str(root), "--models", str(models), "--dim", "128"]
    assert main(arguments) == 0
    assert f"{len(segments)} test segments, dim 128" in capsys.readouterr().out
    records["embedding"][3] += 0.1
    (folder / "test_batch_001.bin").write_bytes(records.tobytes())
    assert main(arguments) == 1
    assert "DIFFER" in capsys.readouterr().out
    assert main([*arguments[:-1], "256"]) == 2  # no embeddings_256 folder: says how to fetch it
    assert "git lfs pull --include" in capsys.readouterr().err
