"""Release folders (`s2i export`): a round trip on the demo's tiny chain, damaged files refused by name, the
all-or-nothing write, fine-tuning a GAN from a release (`gan.init_from`), and the authors' networks as a
release."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from dagster import materialize

from pipelines.cli import main
from pipelines.data import release as release_module
from pipelines.data.artifact_manifest import read_manifest
from pipelines.data.files import sha256_file
from pipelines.data.release import (
    AUTOENCODER,
    GAN,
    GAN_OPTIMIZERS,
    ReleaseError,
    gan_init,
    profile_settings,
    read_release,
)
from pipelines.data.training_steps import judges_fingerprint
from pipelines.profile import load_profile
from s2i_models.checkpoint import load_checkpoint
from s2i_models.train.gan import GanConfig
from tests.conftest import make_resources
from tests.test_model_assets import make_sound

TINY_GAN = {"dim": 128, "width": 0.0625}  # the tiny demo profile's GAN (tests/conftest.py)


@pytest.fixture(scope="module")
def release(trained, tmp_path_factory) -> Path:
    """The tiny chain's gan_128, exported once."""
    profile, data, _ = trained
    out = tmp_path_factory.mktemp("releases") / "demo_128"
    args = ["export", "--dim", "128", "-o", str(out), "--data-dir", str(data), "--profile", str(profile)]
    assert main(args) == 0
    return out


def _weights(state: dict) -> dict:
    """Parameters only: batch-norm running statistics move in any forward pass in train mode."""
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def test_release_holds_every_file_with_its_checksum(trained, release):
    _profile, data, _ = trained
    listed = read_release(release).files  # verifies every checksum
    on_disk = {str(p.relative_to(release)) for p in release.rglob("*") if p.is_file()} - {"release.json"}
    assert set(listed) == on_disk
    for name, entry in listed.items():
        assert (
            entry["sha256"] == sha256_file(release / name)
            and entry["bytes"] == (release / name).stat().st_size
        )
        assert entry["what"]
    assert {
        AUTOENCODER,
        GAN,
        GAN_OPTIMIZERS,
        "spectrogram_stats.json",
        "used_videos.csv",
        "profile.yaml",
    } <= set(listed)
    # gan.pt is a byte copy of the asset's last checkpoint, and its optimizer states are of the same epoch.
    gan = read_manifest(data / "gan_128")
    last = data / "gan_128" / gan.data["checkpoints"][-1]
    assert listed[GAN]["sha256"] == sha256_file(last)
    info = json.loads((release / "release.json").read_text())
    epoch = load_checkpoint(last)["epoch"]
    assert info["dim"] == 128 and info["epochs"]["gan"] == epoch and info["s2i_version"]
    assert load_checkpoint(release / GAN_OPTIMIZERS)["epoch"] == epoch
    assert info["networks"]["generator"] == {"kind": "dense", "width": 0.0625}
    # The profile in force, without its file path, loadable as a profile of its own.
    assert info["profile"]["gan"]["width"] == 0.0625 and "path" not in info["profile"]
    assert load_profile(str(release / "profile.yaml")).gan.width == 0.0625
    assert not [p for p in release.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    # Shareable: the files get the folder's (umask) permissions, not the owner-only ones of atomic writes.
    folder_mode = release.stat().st_mode & 0o777
    assert {(release / name).stat().st_mode & 0o777 for name in listed} == {folder_mode & 0o666}


def test_translate_from_the_release_gives_the_assets_images(trained, release, tmp_path, capsys):
    _profile, data, _ = trained
    wav = make_sound(tmp_path / "tone.wav", 2.5)
    from_asset, from_release = tmp_path / "asset.png", tmp_path / "release.png"
    common = ["-n", "3", "--seed", "5"]
    assert (
        main(["translate", wav, "--dim", "128", *common, "-o", str(from_asset), "--data-dir", str(data)]) == 0
    )
    assert main(["translate", wav, *common, "-o", str(from_release), "--from", str(release)]) == 0
    assert "from the release" in capsys.readouterr().out
    assert from_asset.read_bytes() == from_release.read_bytes()
    # The release knows its dim: another one is an error, not a silent mix.
    assert main(["translate", wav, "--dim", "512", "--from", str(release)]) == 2
    assert "holds dim 128" in capsys.readouterr().err


def test_a_flipped_byte_is_refused_by_name(release, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    victim = copy / GAN
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert main(["translate", "any.wav", "--from", str(copy)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{GAN}: changed" in err
        and sha256_file(victim) in err
        and "copy or download the release again" in err
    )
    with pytest.raises(ReleaseError, match=f"{GAN}: changed"):
        gan_init(copy, GanConfig(**TINY_GAN))


def test_a_truncated_file_is_refused_by_name(release, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    victim = copy / AUTOENCODER
    size = victim.stat().st_size
    victim.write_bytes(victim.read_bytes()[: size // 3])
    assert main(["translate", "any.wav", "--from", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"{AUTOENCODER}: truncated: {size // 3:,} bytes, expected {size:,}" in err
    (copy / "profile.yaml").unlink()
    with pytest.raises(ReleaseError, match="profile.yaml: missing") as caught:
        read_release(copy)
    assert AUTOENCODER in str(caught.value)  # every problem is named, not only the first


def test_export_writes_all_or_nothing(trained, release, tmp_path, monkeypatch, capsys):
    profile, data, _ = trained
    args = ["export", "--dim", "128", "--data-dir", str(data), "--profile", str(profile)]
    assert main([*args, "-o", str(release)]) == 2
    assert "already exists" in capsys.readouterr().err and read_release(release)
    # A failure half-way leaves neither the release nor its temporary folder.
    out = tmp_path / "exports" / "broken"

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(release_module._Writer, "write_bytes", fail)
    with pytest.raises(OSError, match="disk full"):
        main([*args, "-o", str(out)])
    assert list((tmp_path / "exports").iterdir()) == []
    monkeypatch.undo()
    # --force replaces a release, never a folder that is not one.
    again = tmp_path / "again"
    shutil.copytree(release, again)
    assert main([*args, "-o", str(again), "--force"]) == 0
    assert read_release(again).files[GAN] == read_release(release).files[GAN]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    assert main([*args, "-o", str(other), "--force"]) == 2
    assert "not a release folder" in capsys.readouterr().err and (other / "mine.txt").is_file()


def test_export_says_what_is_missing_or_does_not_match(trained, tmp_path, capsys):
    profile, data, _ = trained
    assert main(["export", "--dim", "256", "-o", str(tmp_path / "r"), "--data-dir", str(data)]) == 2
    assert "--select '*gan_256'" in capsys.readouterr().err
    wider = tmp_path / "wider.yaml"
    wider.write_text(f"base: {profile}\ngan: {{width: 0.125}}\n")
    args = [
        "export",
        "--dim",
        "128",
        "-o",
        str(tmp_path / "r"),
        "--data-dir",
        str(data),
        "--profile",
        str(wider),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "gan_128 width: trained 0.0625, profile 0.125" in err and "--profile" in err
    assert not (tmp_path / "r").exists()


def test_classifiers_and_labels_go_along_and_are_checked_against_their_manifests(trained, tmp_path, capsys):
    import pandas as pd

    from pipelines.data.artifact_manifest import write_manifest

    profile, trained_data, _ = trained
    data = tmp_path / "data"  # a copy with (stand-in) classifiers and labels; export reads no shards
    skip = shutil.ignore_patterns("informativity_*", "s2i_report", "segments", "shards", "vegas_clips")
    shutil.copytree(trained_data, data, ignore=skip)
    judges, labels = data / "informativity_classifiers", data / "informativity_labels"
    judges.mkdir()
    labels.mkdir()
    for name in ("dog", "fireworks"):
        torch.save({"model": {}, "class": name}, judges / f"{name}.pt")
    pd.DataFrame({"class_name": ["dog", "fireworks"], "test_accuracy": [0.8, 0.7]}).to_parquet(
        judges / "accuracy.parquet"
    )
    pd.DataFrame({"candidate_id": ["a1", "b2"], "label": [1, 0]}).to_parquet(labels / "labels.parquet")
    files = [judges / "dog.pt", judges / "fireworks.pt", judges / "accuracy.parquet"]
    write_manifest(judges, "judges", settings={}, inputs={}, files=files)
    write_manifest(labels, "labels", settings={}, inputs={}, files=[labels / "labels.parquet"])

    args = ["export", "--dim", "128", "--data-dir", str(data), "--profile", str(profile)]
    assert main([*args, "-o", str(tmp_path / "r")]) == 0
    listed = read_release(tmp_path / "r").files
    wanted = {
        "classifiers/dog.pt",
        "classifiers/fireworks.pt",
        "classifiers/accuracy.parquet",
        "labels.parquet",
    }
    assert wanted <= set(listed) and listed["classifiers/dog.pt"]["what"] == "informativity classifier of Dog"
    assert (tmp_path / "r" / "labels.parquet").read_bytes() == (labels / "labels.parquet").read_bytes()
    # A file changed after its asset was materialized is not released.
    torch.save({"model": {}, "class": "changed"}, judges / "dog.pt")
    assert main([*args, "-o", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "dog.pt does not match the sha256" in err and "--select informativity_classifiers" in err
    assert not (tmp_path / "r2").exists()


def test_release_profile_never_holds_the_cookies(tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret-value\n")
    rows = tmp_path / "rows.csv"
    rows.write_text("class_name,ytid,start_seconds,end_seconds\n")
    path = tmp_path / "yt.yaml"
    path.write_text(f"base: demo\nsource: {{kind: youtube, manifest: {rows}, cookies: {cookies}}}\n")
    settings = profile_settings(load_profile(str(path)))
    text = json.dumps(settings) + release_module._profile_yaml(settings).decode()
    assert "cookies" not in text and "secret-value" not in text and settings["source"]["kind"] == "youtube"


def test_init_from_is_part_of_the_gans_fingerprint(trained, release, tmp_path):
    base = trained[0]

    def profile_with(init_from: Path | None) -> dict:
        path = tmp_path / "p.yaml"
        path.write_text(f"base: {base}\n" + (f"gan: {{init_from: {init_from}}}\n" if init_from else ""))
        return judges_fingerprint(load_profile(str(path)))

    moved = tmp_path / "moved"
    shutil.copytree(release, moved)
    changed = tmp_path / "changed"
    shutil.copytree(release, changed)
    info = json.loads((changed / "release.json").read_text())
    info["notes"].append("re-exported")
    (changed / "release.json").write_text(json.dumps(info))
    assert profile_with(None) == {}  # fingerprints made before init_from existed stay valid
    assert profile_with(release)["init_from"] == profile_with(moved)["init_from"]  # by content, not path
    assert profile_with(changed) != profile_with(release)
    with pytest.raises(ReleaseError, match="not an s2i release"):
        profile_with(tmp_path / "nowhere")


def test_fine_tuning_refuses_another_dim_or_width(release):
    with pytest.raises(ReleaseError, match="holds dim 128 networks; gan_256 cannot start") as caught:
        gan_init(release, GanConfig(dim=256, width=0.0625))
    assert "{128: " in str(caught.value)
    with pytest.raises(ReleaseError, match="width 0.0625.*width 0.125") as caught:
        gan_init(release, GanConfig(dim=128, width=0.125))
    assert "gan: {generator: dense, width: 0.0625}" in str(caught.value)
    with pytest.raises(ReleaseError, match="asks for a sequential generator"):
        gan_init(release, GanConfig(dim=128, width=0.0625, generator="sequential"))
    init = gan_init(release, GanConfig(**TINY_GAN))
    assert {"generator", "discriminator", "optimizer_g", "optimizer_d"} <= set(init)


def test_fine_tuning_takes_the_optimizer_states_but_the_profiles_lr(release):
    from s2i_models.train.gan import _start_from, build_networks

    config = GanConfig(**TINY_GAN, lr=0.01, momentum=0.3)
    init = gan_init(release, config)
    generator, discriminator = build_networks(config)
    optimizers = [torch.optim.SGD(m.parameters(), lr=1.0, momentum=0.9) for m in (generator, discriminator)]
    _start_from(init, config, generator, discriminator, *optimizers)
    parts = ("generator", "discriminator")
    for model, optimizer, part in zip((generator, discriminator), optimizers, parts, strict=True):
        for key, value in init[part].items():
            assert torch.equal(model.state_dict()[key], value), key
        saved = init[f"optimizer_{part[0]}"]
        assert saved["state"], "the release's optimizers have momentum buffers"
        for index, state in saved["state"].items():
            assert torch.equal(
                optimizer.state_dict()["state"][index]["momentum_buffer"], state["momentum_buffer"]
            )
        assert [(g["lr"], g["momentum"]) for g in optimizer.param_groups] == [(0.01, 0.3)]


def test_gan_fine_tunes_from_a_release(trained, release, tmp_path):
    from pipelines.definitions import all_assets, all_checks

    base, trained_data, _ = trained
    data = tmp_path / "data"  # a copy: other tests share the trained chain
    shutil.copytree(trained_data, data, ignore=shutil.ignore_patterns("informativity_*", "s2i_report"))
    profile = tmp_path / "fine.yaml"
    # A learning rate so small that one epoch leaves the weights where the release put them.
    profile.write_text(f"base: {base}\ngan: {{epochs: 1, lr: 1.0e-30, init_from: {release}}}\n")
    result = materialize(
        [*all_assets, *all_checks], resources=make_resources(profile, data), selection=["gan_128"]
    )
    assert result.success
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("gan_128")[-1].metadata.items()}
    started = load_checkpoint(release / GAN)
    assert metadata["init_from_path"] == str(release) and metadata["init_from_epoch"] == started["epoch"]
    manifest = read_manifest(data / "gan_128")
    final = load_checkpoint(data / "gan_128" / manifest.data["checkpoints"][-1])
    assert final["epoch"] == 1
    for part in ("generator", "discriminator"):
        for key, value in _weights(started[part]).items():
            torch.testing.assert_close(final[part][key], value, rtol=0, atol=1e-6, msg=f"{part}.{key}")
    again = materialize(
        [*all_assets, *all_checks], resources=make_resources(profile, data), selection=["gan_128"]
    )
    assert again.asset_materializations_for_node("gan_128")[-1].metadata["reused"].value is True


def test_the_authors_networks_as_a_release(tmp_path, capsys):
    from s2i_models import authors
    from s2i_models.train.classifier import load_classifier
    from tests.authors_reference import AuthorsDiscriminator, randomize
    from tests.test_authors_pipeline import write_authors_models

    models = write_authors_models(tmp_path / "trained_models")
    torch.save(
        randomize(AuthorsDiscriminator(512, 0.0625), seed=9).state_dict(),
        models / authors.DISCRIMINATOR_FILES[512],
    )
    out = tmp_path / "authors_512"
    assert main(["export", "--authors-models", str(models), "--dim", "512", "-o", str(out)]) == 0
    assert "no optimizer states" in capsys.readouterr().out
    release = read_release(out)
    classifiers = {f"classifiers/{name}.pt" for name in authors.AUTHORS_CLASSES}
    assert {AUTOENCODER, GAN, "spectrogram_stats.json", "classifiers/accuracy.parquet"} | classifiers <= set(
        release.files
    )
    assert release.data["source"]["kind"] == "authors" and release.epochs["gan"] == 3679
    assert str(tmp_path) not in (out / "release.json").read_text() + str(load_checkpoint(out / AUTOENCODER))
    # Translating from the release is translating with the authors' networks.
    wav = make_sound(tmp_path / "tone.wav", 2.2)
    theirs, ours = tmp_path / "theirs.png", tmp_path / "ours.png"
    assert main(["translate", wav, "--authors-models", str(models), "-n", "2", "-o", str(theirs)]) == 0
    assert main(["translate", wav, "--from", str(out), "-n", "2", "-o", str(ours)]) == 0
    assert theirs.read_bytes() == ours.read_bytes()
    # A GAN can start from it (weights only), and its classifiers load as judges.
    init = gan_init(out, GanConfig(dim=512, width=0.0625))
    assert "optimizer_g" not in init and init["epoch"] == 3679
    judge = load_classifier(load_checkpoint(out / "classifiers" / "dog.pt"))
    assert judge(torch.zeros(2, 3, 96, 96)).shape == (2, 2)
