from pathlib import Path

import pytest

from pipelines.profile import DemoSource, LocalSource, ProfileError, load_profile


def write(tmp_path: Path, text: str, name: str = "profile.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_builtin_profiles_load():
    demo = load_profile("demo")
    vegas = load_profile("vegas")
    assert isinstance(demo.source, DemoSource)
    assert isinstance(vegas.source, LocalSource)
    assert (vegas.splits.train, vegas.splits.val, vegas.splits.test) == (9789, 1115, 1365)
    assert list(vegas.classes) == ["baby_cry", "dog", "rail_transport", "fireworks", "water_flowing"]
    assert vegas.classes["baby_cry"] == "Baby cry"


def test_environment_selects_profile(monkeypatch):
    monkeypatch.setenv("S2I_PROFILE", "vegas")
    assert load_profile().name == "vegas"
    monkeypatch.delenv("S2I_PROFILE")
    assert load_profile().name == "demo"


def test_base_and_override_with_relative_root(tmp_path):
    (tmp_path / "VEGAS").mkdir()
    path = write(
        tmp_path, "base: vegas\nsource: {kind: local, root: VEGAS}\nsplits: {train: 10}\nworkers: 3\n"
    )
    profile = load_profile(path)
    assert profile.source.root == (tmp_path / "VEGAS").resolve()
    assert (profile.splits.train, profile.splits.val) == (10, 1115)  # merged key by key
    assert profile.workers == 3 and profile.seed == load_profile("vegas").seed


def test_lists_and_value_mappings_replace_the_base_sections_merge(tmp_path):
    vegas = load_profile("vegas")
    (tmp_path / "VEGAS").mkdir()
    first = write(
        tmp_path,
        "base: vegas\nsource: {kind: local, root: VEGAS}\nclasses: {dog: Dog, cat: Cat}\n"
        "evaluation: {candidate_dims: [512], labels_per_class: 7}\n"
        "gan: {epochs: 3, init_from: {128: a, 256: b}}\n",
        "first.yaml",
    )
    profile = load_profile(first)
    assert profile.classes == {"dog": "Dog", "cat": "Cat"}  # replaced, not merged into vegas's five
    assert profile.evaluation.candidate_dims == [512]
    # Sections merge key by key: what the file does not set comes from the base.
    assert profile.evaluation.labels_per_class == 7
    assert profile.evaluation.window == vegas.evaluation.window
    assert profile.evaluation.classifier == vegas.evaluation.classifier
    assert (profile.gan.epochs, profile.gan.lr) == (3, vegas.gan.lr)
    assert profile.splits == vegas.splits

    second = write(
        tmp_path,
        "base: first.yaml\nclasses: {dog: Hound}\ngan: {init_from: {512: c}}\n"
        "evaluation: {classifier: {epochs: 2}}\n",
        "second.yaml",
    )
    profile = load_profile(second)
    assert profile.classes == {"dog": "Hound"}
    assert profile.gan.init_from == {512: tmp_path / "c"}  # the {dim: path} mapping is replaced whole
    assert profile.gan.epochs == 3
    assert profile.evaluation.candidate_dims == [512] and profile.evaluation.labels_per_class == 7
    assert profile.evaluation.classifier.epochs == 2  # a section inside a section merges too
    assert profile.evaluation.classifier.lr == vegas.evaluation.classifier.lr
    # A source of the same kind merges; the demo's classes stay when a file does not name any.
    demo = load_profile(write(tmp_path, "base: demo\nsource: {clips_per_class: 3}\n", "third.yaml"))
    assert (demo.source.kind, demo.source.clips_per_class) == ("demo", 3)
    assert demo.classes == load_profile("demo").classes


def test_unknown_key_names_it_and_the_allowed_keys(tmp_path):
    with pytest.raises(ProfileError) as error:
        load_profile(write(tmp_path, "base: demo\nsplitz: {train: 1}\n"))
    message = str(error.value)
    assert "splitz: unknown key" in message and "splits" in message and "profile.yaml" in message


def test_unknown_key_inside_source(tmp_path):
    with pytest.raises(ProfileError, match=r"source.rot: unknown key; allowed keys here: kind, root"):
        load_profile(write(tmp_path, "base: demo\nsource: {kind: local, rot: /x}\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("splits: {train: -3}", r"splits.train = -3: .*greater than or equal to 1"),
        ("workers: two", r"workers = 'two'"),
        ("source: {kind: ftp}", r"source.* = .*'ftp'.*demo.*local.*youtube"),
        ("shards: {frame_format: jpg}", r"shards.frame_format = 'jpg': .*'npy' or 'png'"),
        ("classes: {Baby Cry: x}", r"class key 'Baby Cry'"),
        ("classes: {cat: Cat}", r"demo source can only make the classes"),
        ("seed: -1", r"seed = -1"),
        ("evaluation: {window: [60, 30]}", r"evaluation.window = .*0 <= start <= end"),
        ("evaluation: {schedule: nightly}", r"evaluation.schedule = 'nightly': .*5-field cron"),
        ("evaluation: {labels: robot}", r"evaluation.labels = 'robot': .*'person' or 'oracle'"),
        ("evaluation: {candidate_dims: [300]}", r"evaluation.candidate_dims.0 = 300"),
        ("evaluation: {classifier: {lr: 0}}", r"evaluation.classifier.lr = 0"),
    ],
)
def test_bad_values_are_named(tmp_path, text, expected):
    with pytest.raises(ProfileError, match=expected):
        load_profile(write(tmp_path, f"base: demo\n{text}\n"))


def test_workers_auto_is_one_per_core(tmp_path):
    import os

    assert load_profile(write(tmp_path, "base: demo\nworkers: auto\n")).workers == os.cpu_count()


def test_missing_profile_and_bad_yaml(tmp_path):
    with pytest.raises(ProfileError, match="no such built-in profile"):
        load_profile(str(tmp_path / "nope.yaml"))
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(write(tmp_path, "seed: [1,\n"))
    with pytest.raises(ProfileError, match="loops"):
        load_profile(write(tmp_path, f"base: {tmp_path / 'profile.yaml'}\n"))


def test_fingerprint_changes_with_settings(tmp_path):
    demo = load_profile("demo")
    other = load_profile(write(tmp_path, "base: demo\nseed: 99\n"))
    assert demo.section_fingerprint("splits") == other.section_fingerprint("splits")
    assert demo.section_fingerprint("seed") != other.section_fingerprint("seed")


def test_cli_profile_show(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["profile", "show", "--profile", "vegas"]) == 0
    out = capsys.readouterr().out
    assert "train: 9789" in out and "kind: local" in out
    assert main(["profile", "show", "--profile", write(tmp_path, "base: demo\nseed: x\n")]) == 2
    assert "seed = 'x'" in capsys.readouterr().err
