"""The informativity evaluation through Dagster on the tiny demo chain: candidates -> labels -> classifiers ->
informativity_128 -> s2i_report, the demo oracle on real demo frames, the schedule and the automation."""

import json

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    evaluate_automation_conditions,
    materialize,
)
from PIL import Image

from pipelines.data.answers import AnswerBook, answers_path
from pipelines.data.classes import PAPER_CLASSIFIER_ACCURACY
from pipelines.definitions import all_assets, all_checks
from tests.conftest import make_resources

EVALUATION = ["informativity_candidates", "informativity_labels", "informativity_classifiers"]

# A person's answers are simulated below; the classifier must be able to learn them from a few images.
PERSON_PROFILE = """\
base: {base}
evaluation:
  labels: person
  labels_per_class: 9
  min_labels_per_class: 3
  candidate_dims: [128]
  checkpoints_per_dim: 3
  candidate_samples: 2
  window: [1, 4]
  moving_average_epochs: 2
  classifier: {{width: 0.25, epochs: 12, batch_size: 6, lr: 0.01}}
"""


def metadata_of(result, key: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(key)[-1].metadata.items()}


@pytest.fixture(scope="module")
def evaluated(trained):
    base, data, _ = trained
    profile = base.parent / "person.yaml"
    profile.write_text(PERSON_PROFILE.format(base=base))
    resources = make_resources(profile, data)
    everything = [*all_assets, *all_checks]
    candidates = materialize(everything, resources=resources, selection=["informativity_candidates"])
    assert candidates.success

    # Before any answer, the labels asset says what to do.
    with pytest.raises(Exception, match="s2i label"):
        materialize(everything, resources=resources, selection=["informativity_labels"])

    # A "person" who calls the brighter half of each class's candidates informative.
    folder = data / "informativity_candidates"
    table = pd.read_parquet(folder / "candidates.parquet")
    images = np.load(folder / "images.npy")
    brightness = images.reshape(len(images), -1).mean(axis=1)
    book = AnswerBook(answers_path(data))
    for name, rows in table.groupby("class_name"):
        median = np.median(brightness[rows.index])
        for index, row in rows.iterrows():
            label = "informative" if brightness[index] > median else "non_informative"
            book.record(row.sha256, label, candidate_id=row.candidate_id, class_name=name, labeller="test")
    # Whether classifiers this tiny beat chance is up to luck; the check runs and reports either way
    # (test_classifier_learns_a_visible_rule shows one does), and evaluation goes on in a second run.
    classifiers = materialize(everything, resources=resources, selection=EVALUATION[1:], raise_on_error=False)
    result = materialize(everything, resources=resources, selection=["informativity_128", "s2i_report"])
    return profile, data, classifiers, result


def test_candidates_have_equal_counts_per_checkpoint_and_provenance(evaluated):
    _profile, data, _classifiers, _result = evaluated
    folder = data / "informativity_candidates"
    table = pd.read_parquet(folder / "candidates.parquet")
    per_source = table.groupby(["dim", "epoch"]).size()
    assert len(per_source) == 3 and per_source.nunique() == 1  # 3 checkpoints, equal shares
    assert len(table) == 3 * 15 * 2  # checkpoints x validation sounds x samples
    assert table.candidate_id.is_unique and table.sha256.is_unique
    first = table.iloc[0]
    assert (data / first.checkpoint).is_file()  # provenance points at the generator used
    assert Image.open(folder / first.image).size == (96, 96)
    assert not table.class_name.head(10).nunique() == 1  # labelling order mixes classes


def test_labels_are_balanced_and_classifiers_are_checked(evaluated):
    _profile, data, classifiers, _result = evaluated
    labels = pd.read_parquet(data / "informativity_labels" / "labels.parquet")
    counts = labels.groupby(["class_name", "label"]).size().unstack()
    assert (counts[0] == counts[1]).all() and len(counts) == 5
    per_source = labels.groupby(["class_name", "source", "label"]).size().unstack(fill_value=0)
    assert (per_source[0] == per_source[1]).all()  # every model gives as many of each label
    assert set(labels.source) == {f"gan_128@{e}" for e in labels.epoch}
    accuracy = pd.read_parquet(data / "informativity_classifiers" / "accuracy.parquet")
    assert len(accuracy) == 5 and (accuracy.test > 0).all() and (accuracy.train > accuracy.test).all()
    # Held out by sound (the tiny chain's classes have too few videos to split by video): no sound's
    # translations on both sides of the split.
    assert (accuracy.split_by == "sound").all()
    split = labels.merge(
        pd.read_parquet(data / "informativity_classifiers" / "split.parquet"), on="candidate_id"
    )
    assert split.held_out.any() and (~split.held_out).any()
    assert (split.groupby(["clip_id", "segment"]).held_out.nunique() == 1).all()
    assert accuracy.set_index("class_name").paper_accuracy.to_dict() == PAPER_CLASSIFIER_ACCURACY
    check = next(c for c in classifiers.get_asset_check_evaluations() if c.check_name == "each_beats_chance")
    # The tiny chain holds out fewer images than it takes to tell a classifier from chance: a warning.
    assert (accuracy.test < 30).all()
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert metadata_of(classifiers, "informativity_classifiers")["accuracy"].startswith("|")
    assert all((data / "informativity_classifiers" / f"{name}.pt").is_file() for name in accuracy.class_name)


def test_classifier_learns_a_visible_rule():
    """The paper's hyperparameters on a rule a classifier can see: a bright square means informative."""
    from s2i_models.train.classifier import ClassifierConfig, classify, train_classifier

    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (60, 96, 96, 3), dtype=np.uint8)
    labels = np.arange(60) % 2
    images[labels == 1, 30:66, 30:66] = 255
    result = train_classifier(images, labels, ClassifierConfig(width=0.25, epochs=15, batch_size=8, seed=1))
    assert result.chance == 0.5 and result.test_accuracy > 0.8
    assert len(result.test_index) == 12 and not set(result.test_index) & set(result.train_index)
    assert (classify(result.model, images[result.test_index]) == labels[result.test_index]).mean() > 0.8


def test_informativity_history_summaries_and_baseline(evaluated):
    _profile, data, _classifiers, result = evaluated
    folder = data / "informativity_128"
    history = pd.read_parquet(folder / "history.parquet")
    summary = json.loads((folder / "summary.json").read_text())
    checkpoints = sorted(p for p in (data / "gan_128").rglob("epoch-*.pt"))
    assert sorted(history.epoch.unique()) == summary["epochs_evaluated"]
    assert len(summary["epochs_evaluated"]) == len(checkpoints)
    assert set(history.class_name) == {"baby_cry", "dog", "rail_transport", "fireworks", "water_flowing"}
    assert history.informativity.between(0, 1).all()
    for part in ("window_average", "max_moving_average", "baseline", "cross_class_window_average"):
        assert set(summary[part]) == set(history.class_name) | {"average"}
    assert history.cross_class.between(0, 1).all()  # the control: other classes' sounds
    checks = {c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations()}
    assert checks["informativity_128"].passed


def test_report_files_and_figures(evaluated):
    _profile, data, _classifiers, result = evaluated
    folder = data / "s2i_report"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["best_dim"] == 128 and set(summary["dims"]) == {"128"}
    assert summary["dims"]["128"]["final_pixel_loss"] > 0
    html = (folder / "index.html").read_text()
    figures = sorted(folder.glob("*.png"))
    assert {p.stem for p in figures} >= {
        "figure7_informativity_history",
        "figure7_informativity_vs_dim",
        "figure8_pixel_loss",
        "figure8_pixel_loss_vs_dim",
        "figure9_translations_dog",
    }
    for path in figures:
        assert path.name in html
        pixels = np.asarray(Image.open(path).convert("L"))
        assert pixels.shape[0] > 100 and pixels.std() > 5, f"{path.name} looks empty"
    metadata = metadata_of(result, "s2i_report")
    assert metadata["summary"].startswith("|") and metadata["figure7_informativity_history"].startswith("![")


def test_rerun_reuses_and_new_checkpoint_is_scored_alone(evaluated, tmp_path):
    profile, data, _classifiers, _result = evaluated
    result = materialize(
        [*all_assets, *all_checks], resources=make_resources(profile, data), selection=["informativity_128"]
    )
    assert metadata_of(result, "informativity_128")["reused"] is True
    cached = sorted((data / "informativity_128" / "per_checkpoint").glob("*.json"))
    assert (
        len(cached)
        == len(json.loads((data / "informativity_128" / "summary.json").read_text())["epochs_evaluated"]) + 1
    )


def test_nightly_schedule_requests_dims_with_checkpoints(evaluated):
    from pipelines.resources import ArtifactStore
    from pipelines.schedules import build_evaluation_schedule

    _profile, data, _classifiers, _result = evaluated
    schedule = build_evaluation_schedule("0 3 * * *")
    request = schedule(build_schedule_context(resources={"store": ArtifactStore(root=str(data))}))
    assert isinstance(request, RunRequest)
    assert set(request.asset_selection) == {AssetKey("informativity_128"), AssetKey("s2i_report")}

    empty = schedule(build_schedule_context(resources={"store": ArtifactStore(root=str(data / "none"))}))
    assert isinstance(empty, SkipReason)


def test_new_gan_materialization_requests_its_evaluation_and_the_report():
    from dagster import AssetMaterialization

    from pipelines.definitions import defs

    instance = DagsterInstance.ephemeral()
    upstream = ["informativity_classifiers", "audio_embeddings_512", "gan_512"]
    for key in upstream:
        instance.report_runless_asset_event(AssetMaterialization(key))
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    # Evaluated once: remember the state, then a new GAN arrives.
    instance.report_runless_asset_event(AssetMaterialization("gan_512"))
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(AssetKey("informativity_512")) == 1
    assert second.get_num_requested(AssetKey("s2i_report")) == 1
    assert second.get_num_requested(AssetKey("informativity_256")) == 0  # its GAN did not change
    assert first.get_num_requested(AssetKey("informativity_512")) == 0  # nothing new since the first look


def test_demo_oracle_on_real_demo_frames(trained, tmp_path, monkeypatch):
    from pipelines.assets.training import load_shards
    from pipelines.data.demo import oracle as oracle_module
    from pipelines.data.demo.oracle import NONE, load_or_fit_demo_oracle
    from pipelines.resources import ArtifactStore

    _profile, data, _result = trained
    store = ArtifactStore(root=str(data))
    train, test = load_shards(store, "train"), load_shards(store, "test")
    train_names = [m["class_name"] for m in train.meta]
    cache = tmp_path / "demo_oracle.npz"
    oracle = load_or_fit_demo_oracle(cache, train.frames, train_names, margin=0.5, seed=0)
    assert oracle.answers == [*sorted(set(train_names)), NONE]
    names = [m["class_name"] for m in test.meta]
    real = oracle.evaluate(test.frames, names)
    assert real["top_answer_accuracy"] >= 0.9 and real["informative_share"] >= 0.8
    # Fitted once: a second step with the same shards, seed and margin loads it.
    monkeypatch.setattr(oracle_module, "fit_demo_oracle", lambda *a, **k: pytest.fail("fitted again"))
    again = load_or_fit_demo_oracle(cache, train.frames, train_names, margin=0.5, seed=0)
    assert np.array_equal(again.margins(test.frames, names), oracle.margins(test.frames, names))
    # A real frame shown with the wrong class, and noise, are not informative.
    wrong = [next(n for n in oracle.answers[:-1] if n != name) for name in names]
    assert oracle.informative(test.frames, wrong).mean() <= 0.1
    noise = np.random.default_rng(0).integers(0, 256, (len(names), 96, 96, 3), dtype=np.uint8)
    assert not oracle.informative(noise, names).any()
    with pytest.raises(ValueError, match="15 class names for 3 images"):
        oracle.margins(noise[:3], names)


ORACLE_PROFILE = """\
base: {base}
evaluation:
  labels: oracle
  labels_per_class: 3
  min_labels_per_class: 2
  candidate_dims: [128]
  checkpoints_per_dim: 1
  candidate_sounds_per_class: 1
  candidate_samples: 2
"""


def test_demo_oracle_candidates_grow_and_their_labels_reuse_its_judgements(trained, tmp_path):
    """The demo path (`labels: oracle`): each class draws until its target or the pool; the label step labels
    from the margins stored with the candidates, the same as an oracle fitted again would give."""
    import shutil

    from pipelines.data.evaluation_steps import fit_oracle
    from pipelines.data.steps import ArtifactFolders
    from pipelines.profile import load_profile

    base, trained_data, _ = trained
    data = tmp_path / "data"  # a copy: the module's other tests read the person profile's candidates
    for key in ("shards", "audio_embeddings_128", "gan_128"):
        shutil.copytree(trained_data / key, data / key)
    profile = tmp_path / "oracle.yaml"
    profile.write_text(ORACLE_PROFILE.format(base=base))
    resources = make_resources(profile, data)
    everything = [*all_assets, *all_checks]
    result = materialize(everything, resources=resources, selection=["informativity_candidates"])
    assert result.success
    folder = data / "informativity_candidates"
    table = pd.read_parquet(folder / "candidates.parquet")
    draws = json.loads((folder / "draws.json").read_text())
    checkpoints = len(list((data / "gan_128").rglob("epoch-*.pt")))
    for name, draw in draws.items():
        rows = table[table.class_name == name]
        assert len(rows) == draw["candidates"] == draw["sounds"] * draw["checkpoints"] * 2
        assert draw["expected_pairs"] >= 3 or (
            draw["exhausted"] and draw["sounds"] == 3 and draw["checkpoints"] == checkpoints
        )
    assert metadata_of(result, "informativity_candidates")["draws"].startswith("|")

    settings = load_profile(str(profile))
    oracle, _real = fit_oracle(ArtifactFolders(data), settings)
    images = np.load(folder / "images.npy")
    assert np.allclose(oracle.margins(images, table.class_name.tolist()), table.margin)

    # The tiny chain's GANs trained 3 epochs: the oracle may find (almost) nothing informative in the whole pool.
    # A class below min_labels_per_class with its pool exhausted is judged never informative (no classifier),
    # said in a warning and in never_informative.json, instead of stopping the demo.
    exhausted = sorted(name for name, draw in draws.items() if draw["exhausted"])
    labels = materialize(
        everything, resources=resources, selection=["informativity_labels", "informativity_classifiers"]
    )
    assert labels.success
    check = next(c for c in labels.get_asset_check_evaluations() if c.check_name == "labels_reach_target")
    assert check.passed == (not exhausted)
    shortfall = json.loads((data / "informativity_labels" / "shortfall.json").read_text())
    assert sorted(shortfall) == exhausted and all("pool exhausted" in m for m in shortfall.values())
    never = json.loads((data / "informativity_labels" / "never_informative.json").read_text())
    kept = pd.read_parquet(data / "informativity_labels" / "labels.parquet")
    assert set(never) <= set(exhausted) and not set(never) & set(kept.class_name)
    accuracy = pd.read_parquet(data / "informativity_classifiers" / "accuracy.parquet")
    assert set(accuracy.class_name[accuracy.split_by == "never informative"]) == set(never)
    for name in never:  # no classifier file: every picture of the class counts as non-informative
        assert not (data / "informativity_classifiers" / f"{name}.pt").exists()
    from pipelines.data.evaluation_steps import load_classifiers
    from s2i_models.train.classifier import NeverInformative, classify

    judges = load_classifiers(ArtifactFolders(data), settings.class_names, "cpu")
    for name in never:
        assert isinstance(judges[name], NeverInformative) and not classify(judges[name], images[:4]).any()


@pytest.mark.parametrize(
    ("held_out", "accuracy", "chance", "passed", "warn_only", "losing", "too_few"),
    [
        ((40, 40), (0.9, 0.8), (0.5, 0.6), True, False, [], {}),
        ((40, 40), (0.9, 0.55), (0.5, 0.6), False, False, ["b"], {}),  # enough images: a real failure
        ((40, 15), (0.9, 0.6), (0.5, 0.8), False, True, [], {"b": 15}),  # 15 images cannot tell: warned
        ((40, 1), (0.9, 1.0), (0.5, 1.0), False, True, [], {"b": 1}),
        ((15, 40), (0.6, 0.5), (0.8, 0.6), False, False, ["b"], {"a": 15}),  # a real failure wins
    ],
)
def test_beats_chance_judges_only_what_enough_images_can_show(
    tmp_path, held_out, accuracy, chance, passed, warn_only, losing, too_few
):
    from pipelines.data.evaluation_steps import check_classifiers_beat_chance
    from pipelines.data.steps import ArtifactFolders

    folder = tmp_path / "informativity_classifiers"
    folder.mkdir()
    pd.DataFrame(
        {"class_name": ["a", "b"], "test": held_out, "test_accuracy": accuracy, "chance": chance}
    ).to_parquet(folder / "accuracy.parquet")
    outcome = check_classifiers_beat_chance(ArtifactFolders(tmp_path))
    assert (outcome.passed, outcome.warn_only) == (passed, warn_only)
    assert outcome.metadata["not_beating_chance"] == losing
    assert outcome.metadata["too_few_held_out"] == too_few
    if warn_only:
        assert "label more" in outcome.description


def test_beats_chance_judges_the_authors_classifiers_without_a_held_out_count(tmp_path):
    from pipelines.data.evaluation_steps import check_classifiers_beat_chance
    from pipelines.data.steps import ArtifactFolders

    folder = tmp_path / "informativity_classifiers"
    folder.mkdir()
    table = pd.DataFrame({"class_name": ["a", "b"], "test_accuracy": [0.8, 0.84], "chance": [0.5, 0.5]})
    table.to_parquet(folder / "accuracy.parquet")
    outcome = check_classifiers_beat_chance(ArtifactFolders(tmp_path))
    assert outcome.passed and outcome.metadata["too_few_held_out"] == {}
    table.assign(test_accuracy=[0.8, 0.5]).to_parquet(folder / "accuracy.parquet")
    assert check_classifiers_beat_chance(ArtifactFolders(tmp_path)).metadata["not_beating_chance"] == ["b"]
