"""autoencoder_{dim} -> audio_embeddings_{dim} -> gan_{dim} through Dagster on the tiny demo profile."""

import numpy as np
import pandas as pd
from dagster import AssetCheckSeverity, materialize

from pipelines.assets.training import DIMS
from pipelines.definitions import all_assets, all_checks, defs
from tests.conftest import MODELS, make_resources


def metadata_of(result, key: str) -> dict:
    return {
        name: value.value for name, value in result.asset_materializations_for_node(key)[-1].metadata.items()
    }


def test_models_materialize_with_checks(trained):
    _profile, data, result = trained
    assert result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    learned = checks.pop(("gan_128", "learned_not_collapsed"))
    for key in MODELS:
        assert [c.passed for (asset, _), c in checks.items() if asset == key] == [True], key
    # Three epochs are too few to learn: the tiny profile's `collapse_check: warn` reports it without stopping.
    assert learned.severity == AssetCheckSeverity.WARN
    assert {"sound_spread", "loss_ratio", "mean_image_pixel_loss"} <= set(learned.metadata)

    ae = metadata_of(result, "autoencoder_128")
    assert ae["epochs"] == 2 and ae["loss_curve"].startswith("![") and ae["reconstructions"].startswith("![")
    for split, count in (("train", 50), ("val", 15), ("test", 15)):
        embeddings = np.load(data / "audio_embeddings_128" / f"{split}.npy")
        assert embeddings.shape == (count, 128) and np.abs(embeddings).max() <= 1.0

    gan = metadata_of(result, "gan_128")
    assert gan["checkpoints"] == 3 and gan["generated_validation_sounds"].startswith("![")
    assert sorted(p.name for p in (data / "gan_128").rglob("epoch-*.pt")) == [
        "epoch-00001.pt",
        "epoch-00002.pt",
        "epoch-00003.pt",
    ]
    history = pd.read_parquet(data / "gan_128" / "history.parquet")
    assert list(history.epoch) == [1, 2, 3]
    assert history.discriminator_loss.notna().tolist() == [False, True, False]  # D every 2nd epoch


def test_more_epochs_resume_from_the_last_checkpoint(trained):
    profile, data, _result = trained
    longer = profile.parent / "longer.yaml"
    longer.write_text(profile.read_text().replace("epochs: 3,", "epochs: 4,"))
    result = materialize([*all_assets, *all_checks], resources=make_resources(longer, data), selection=MODELS)
    assert result.success
    assert metadata_of(result, "autoencoder_128")["reused"] is True
    gan = metadata_of(result, "gan_128")
    assert gan["reused"] is False and gan["resumed_from_epoch"] == 3 and gan["checkpoints"] == 4


def test_every_dim_has_its_assets_pool_and_code_version():
    graph = defs.resolve_asset_graph()
    for dim in DIMS:
        for kind in ("autoencoder", "audio_embeddings", "gan"):
            node = graph.get(
                next(k for k in graph.get_all_asset_keys() if k.to_user_string() == f"{kind}_{dim}")
            )
            assert node.group_name == "models" and node.code_version
            assert node.pools == {"gpu"}


def make_sound(path, seconds: float) -> str:
    import subprocess

    from pipelines.media.ffmpeg_binary import ffmpeg_exe

    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=f=440:r=22050:d={seconds}",
            str(path),
        ],
        check=True,
    )
    return str(path)


def test_s2i_translate_sound_and_video(trained, tmp_path, capsys):
    from PIL import Image

    from pipelines.cli import main

    _profile, data, _result = trained
    wav = make_sound(tmp_path / "tone.wav", 2.5)  # audio only: two whole seconds
    out = tmp_path / "grid.png"
    assert main(["translate", wav, "--dim", "128", "-n", "3", "-o", str(out), "--data-dir", str(data)]) == 0
    assert "2 s x 3 images" in capsys.readouterr().out
    width, height = Image.open(out).size
    assert width > height > 100  # two rows of three images

    video = next((data / "vegas_clips" / "demo" / "dog" / "videos").glob("*.mp4"))
    assert (
        main(["translate", str(video), "--dim", "128", "-n", "1", "-o", str(out), "--data-dir", str(data)])
        == 0
    )


def test_s2i_translate_errors_say_what_to_do(trained, tmp_path, capsys):
    from pipelines.cli import main

    _profile, data, _result = trained
    short = make_sound(tmp_path / "blip.wav", 0.5)
    assert main(["translate", short, "--dim", "128", "--data-dir", str(data)]) == 2
    assert "shorter than 1 s" in capsys.readouterr().err
    assert main(["translate", short, "--dim", "256", "--data-dir", str(data)]) == 2
    assert "--select '*gan_256'" in capsys.readouterr().err
    text = tmp_path / "notes.mp3"
    text.write_text("not a sound at all, just words\n")
    assert main(["translate", str(text), "--dim", "128", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "not a video" in err and "plain text" in err
