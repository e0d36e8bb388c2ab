"""Informativity summaries (s2i_models.evaluation) on hand-made histories."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from s2i_models.evaluation import (
    average_over_window,
    discriminator_update_epochs,
    max_moving_average,
    replace_after_discriminator_updates,
    summarize,
)


def history(values: dict[str, dict[int, float]]) -> pd.DataFrame:
    """{class: {epoch: informativity}} -> history table."""
    rows = [(e, c, v) for c, by_epoch in values.items() for e, v in by_epoch.items()]
    return pd.DataFrame(rows, columns=["epoch", "class_name", "informativity"])


def values_by_epoch(table: pd.DataFrame, class_name: str, column: str = "informativity") -> dict[int, object]:
    rows = table[table["class_name"] == class_name]
    return dict(zip(rows["epoch"].tolist(), rows[column].tolist(), strict=True))


def test_import_does_not_pull_torch():
    code = "import sys, s2i_models.evaluation; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_discriminator_update_epochs():
    assert discriminator_update_epochs(23, 5) == [5, 10, 15, 20]
    assert discriminator_update_epochs(20, 5, unit="epoch") == [5, 10, 15, 20]
    assert discriminator_update_epochs(3, 1) == [1, 2, 3]
    assert discriminator_update_epochs(100, 5, unit="step") == []
    with pytest.raises(ValueError, match="unit"):
        discriminator_update_epochs(10, 5, unit="batch")


def test_spikes_after_updates_are_replaced():
    by_epoch = {e: 0.1 for e in range(1, 16)}
    for e in (6, 7, 11, 12):
        by_epoch[e] = 0.9
    out = replace_after_discriminator_updates(history({"dog": by_epoch}), [5, 10])
    assert np.allclose(out["informativity"], 0.1)
    assert [e for e, r in values_by_epoch(out, "dog", "replaced").items() if r] == [6, 7, 11, 12]
    assert out["replaced"].dtype == bool


def test_replacement_uses_five_previous_unreplaced_evaluations():
    by_epoch = {e: float(e) / 100 for e in range(1, 13)}
    out = values_by_epoch(replace_after_discriminator_updates(history({"dog": by_epoch}), [10]), "dog")
    # Epochs 11 and 12 both take the mean of epochs 6..10 (12 skips the replaced epoch 11).
    assert out[11] == pytest.approx(0.08)
    assert out[12] == pytest.approx(0.08)
    assert out[10] == pytest.approx(0.10)
    # Updates at 5 and 10: the five unreplaced evaluations before 11 are 4, 5, 8, 9, 10 (6 and 7 are replaced).
    out = values_by_epoch(replace_after_discriminator_updates(history({"dog": by_epoch}), [5, 10]), "dog")
    assert out[11] == pytest.approx(np.mean([0.04, 0.05, 0.08, 0.09, 0.10]))
    assert out[6] == pytest.approx(np.mean([0.01, 0.02, 0.03, 0.04, 0.05]))


def test_replacement_with_sparse_checkpoints_and_update_epoch_kept():
    # Checkpoints every 2 epochs; updates at 5 and 10: evaluated epochs in (5, 7] and (10, 12] are 6 and 12.
    by_epoch = {e: 0.1 for e in range(2, 21, 2)}
    by_epoch[6] = by_epoch[12] = 0.9
    by_epoch[8] = 0.5  # 8 is 3 epochs after the update at 5: kept
    by_epoch[10] = 0.7  # the update epoch itself: kept
    out = replace_after_discriminator_updates(history({"dog": by_epoch}), [5, 10])
    replaced = values_by_epoch(out, "dog", "replaced")
    assert [e for e, r in replaced.items() if r] == [6, 12]
    values = values_by_epoch(out, "dog")
    assert values[6] == pytest.approx(0.1)
    assert values[8] == pytest.approx(0.5)
    assert values[10] == pytest.approx(0.7)
    # Before 12 only four unreplaced evaluations exist (2, 4, 8, 10; 6 is replaced): their mean.
    assert values[12] == pytest.approx(np.mean([0.1, 0.1, 0.5, 0.7]))


def test_replacement_without_earlier_evaluation_keeps_value():
    # History starts at 2 right after an update at 1: 2 and 3 have no earlier evaluation and are kept, but as
    # after-update values they are not used to replace 5 and 6 either.
    out = replace_after_discriminator_updates(
        history({"dog": {2: 0.9, 3: 0.8, 4: 0.4, 5: 0.1, 6: 0.7}}), [1, 4]
    )
    assert values_by_epoch(out, "dog") == pytest.approx({2: 0.9, 3: 0.8, 4: 0.4, 5: 0.4, 6: 0.4})
    assert values_by_epoch(out, "dog", "replaced") == {2: False, 3: False, 4: False, 5: True, 6: True}


def test_replacement_is_per_class_and_order_free():
    dog = {e: 0.2 for e in range(1, 11)}
    dog[6] = 0.9
    fire = {e: 0.6 for e in range(1, 11) if e != 7}  # fireworks missing epoch 7
    table = history({"dog": dog, "fireworks": fire})
    shuffled = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    out = replace_after_discriminator_updates(shuffled, [5])
    assert out[["class_name", "epoch"]].values.tolist() == sorted(
        table[["class_name", "epoch"]].values.tolist()
    )
    assert np.allclose(values_by_epoch(out, "dog")[6], 0.2)
    assert np.allclose(list(values_by_epoch(out, "fireworks").values()), 0.6)
    assert [e for e, r in values_by_epoch(out, "fireworks", "replaced").items() if r] == [6]
    assert [e for e, r in values_by_epoch(out, "dog", "replaced").items() if r] == [6, 7]
    assert len(shuffled) == len(table)  # input left alone
    assert "replaced" not in shuffled.columns


def test_bad_history_is_rejected_with_context():
    with pytest.raises(ValueError, match="missing column"):
        replace_after_discriminator_updates(pd.DataFrame({"epoch": [1]}), [])
    with pytest.raises(ValueError, match="epoch 3"):
        average_over_window(history({"dog": {3: 1.5}}), 0, 10)
    dup = pd.concat([history({"dog": {3: 0.5}})] * 2)
    with pytest.raises(ValueError, match="more than one row for epoch 3"):
        max_moving_average(dup)


def test_window_average_on_a_ramp():
    ramp = {e: e / 1000 for e in range(1, 1001)}
    flat = {e: 0.3 for e in range(1, 1001)}
    out = average_over_window(history({"dog": ramp, "rail": flat}), 101, 300)
    assert out["dog"] == pytest.approx((101 + 300) / 2 / 1000)
    assert out["rail"] == pytest.approx(0.3)
    assert out["average"] == pytest.approx(((101 + 300) / 2 / 1000 + 0.3) / 2)
    assert list(out.index) == ["dog", "rail", "average"]


def test_window_average_is_mean_over_epochs_of_class_mean():
    # rail is evaluated only at epoch 2: the average is the mean of epoch means (0.1, (0.3+0.9)/2).
    out = average_over_window(history({"dog": {1: 0.1, 2: 0.3}, "rail": {2: 0.9}}), 1, 2)
    assert out["average"] == pytest.approx((0.1 + 0.6) / 2)
    assert out["rail"] == pytest.approx(0.9)


def test_empty_window_is_nan():
    out = average_over_window(history({"dog": {1: 0.1, 2: 0.3}}), 500, 4000)
    assert math.isnan(out["dog"]) and math.isnan(out["average"])
    out = average_over_window(history({"dog": {1: 0.1}, "rail": {600: 0.4}}), 500, 4000)
    assert math.isnan(out["dog"])
    assert out["rail"] == pytest.approx(0.4) and out["average"] == pytest.approx(0.4)


def test_max_moving_average_of_a_bump():
    # 20 epochs of 1.0 in 200 epochs of 0: the best 50-epoch window holds all 20 -> 20 / 50.
    bump = {e: (1.0 if 101 <= e <= 120 else 0.0) for e in range(1, 201)}
    wide = {e: (0.5 if 51 <= e <= 130 else 0.1) for e in range(1, 201)}  # wider than a window -> its height
    out = max_moving_average(history({"dog": bump, "rail": wide}), 50)
    assert out["dog"] == pytest.approx(0.4)
    assert out["rail"] == pytest.approx(0.5)
    # Class mean per epoch: 0.5*bump + 0.5*wide; best window [81, 130]: (20*1 + 50*0.5) / 2 / 50.
    assert out["average"] == pytest.approx((20 * 1.0 + 50 * 0.5) / 100)


def test_max_moving_average_counts_epochs_not_rows():
    # Checkpoints every 5 epochs: the bump covers evaluated epochs 105..120 (4 rows); a 50-epoch window holds
    # 10 rows, so the max is 4 / 10 (a 50-row window would give 4 / 50).
    bump = {e: (1.0 if 105 <= e <= 120 else 0.0) for e in range(5, 501, 5)}
    out = max_moving_average(history({"dog": bump}), 50)
    assert out["dog"] == pytest.approx(0.4)


def test_max_moving_average_needs_full_windows():
    # A spike at the very start must not count as a 1-evaluation "window".
    by_epoch = {e: 0.0 for e in range(1, 101)}
    by_epoch[1] = 1.0
    assert max_moving_average(history({"dog": by_epoch}), 50)["dog"] == pytest.approx(1 / 50)


def test_max_moving_average_of_short_history_is_its_mean():
    out = max_moving_average(history({"dog": {5: 0.1, 10: 0.2, 15: 0.6}}), 50)
    assert out["dog"] == pytest.approx(0.3)
    assert out["average"] == pytest.approx(0.3)


def test_summarize_is_json_ready_and_uses_replaced_values():
    dog = {e: 0.1 for e in range(1, 101)}
    rail = {e: 0.3 for e in range(1, 101)}
    for u in discriminator_update_epochs(90, 10):
        dog[u + 1] = 0.9  # spikes right after each update must not reach the summaries
    summary = summarize(
        history({"dog": dog, "rail": rail}),
        update_epochs=discriminator_update_epochs(100, 10),
        window=(20, 80),
        moving_average_epochs=50,
    )
    json_part = {k: v for k, v in summary.items() if k != "per_epoch"}
    decoded = json.loads(json.dumps(json_part, allow_nan=False))
    assert decoded["window"] == [20, 80]
    assert decoded["window_average"]["dog"] == pytest.approx(0.1)
    assert decoded["window_average"]["average"] == pytest.approx(0.2)
    assert decoded["max_moving_average"]["dog"] == pytest.approx(0.1)
    assert decoded["replaced_epochs"] == [u + k for u in range(10, 100, 10) for k in (1, 2)]
    assert isinstance(summary["per_epoch"], pd.DataFrame)
    assert summary["per_epoch"]["replaced"].sum() == 2 * 18  # both classes, 2 epochs after each of 9 updates
    assert all(type(v) is float for v in decoded["window_average"].values())


def test_summarize_empty_window_is_null_in_json():
    summary = summarize(history({"dog": {1: 0.1, 2: 0.2}}), update_epochs=[])
    json_part = {k: v for k, v in summary.items() if k != "per_epoch"}
    decoded = json.loads(json.dumps(json_part, allow_nan=False))
    assert decoded["window_average"] == {"dog": None, "average": None}
    assert decoded["window"] == [500, 4000]
    assert decoded["replaced_epochs"] == []


def test_window_mean_per_class_and_average():
    from s2i_models.evaluation import window_mean

    history = pd.DataFrame(
        {
            "epoch": [10, 20, 30, 10, 20, 30],
            "class_name": ["dog"] * 3 + ["water"] * 3,
            "informativity": [0.1] * 6,
            "cross_class": [0.0, 0.2, 0.9, 0.4, 0.4, 0.9],
        }
    )
    result = window_mean(history, "cross_class", (10, 20))
    assert result == pytest.approx({"dog": 0.1, "water": 0.4, "average": 0.25})
    assert window_mean(history, "cross_class", (40, 50)) == {"dog": None, "water": None, "average": None}


def test_score_translations_counts_own_and_other_classes():
    """A generator that draws a bright picture for positive embeddings, and a classifier per class that
    calls bright pictures informative: own and cross-class shares follow from the embeddings' signs."""
    import numpy as np
    import torch
    from torch import nn

    from s2i_models.scoring import score_translations

    class SignPainter(nn.Module):
        def forward(self, x):  # (B, 2) -> (B, 3, 96, 96): +0.9 or -0.9 everywhere
            return torch.sign(x[:, :1]).mul(0.9).view(-1, 1, 1, 1).expand(-1, 3, 96, 96)

    class BrightIsInformative(nn.Module):
        def forward(self, images):  # (B, 3, 96, 96) in [-1, 1] -> (B, 2) log-probs
            bright = (images.mean(dim=(1, 2, 3)) > 0).float()
            return torch.log(torch.stack([1 - bright, bright], dim=1).clamp_min(1e-6))

    embeddings = np.array([[1, 0], [1, 0], [-1, 0], [1, 0], [-1, 0], [-1, 0]], dtype=np.float32)
    classes = np.array(["dog", "dog", "dog", "water", "water", "water"])
    judge = BrightIsInformative()
    result = score_translations(
        SignPainter(), embeddings, classes, {"dog": judge, "water": judge}, samples=2, seed=0
    )
    assert result["informativity"] == pytest.approx({"dog": 2 / 3, "water": 1 / 3})
    assert result["cross_class"] == pytest.approx({"dog": 1 / 3, "water": 2 / 3})


def test_per_epoch_history_the_paper_way_spikes_after_d_updates_are_removed():
    """A generator judged at every epoch of 100, D updated every 5th epoch: its informativity is 0.2, except in
    the two epochs after each update (6, 7, 11, 12, ..., 96, 97: 19 updates x 2 = 38 epochs), where D's
    fresh gradients make it spike to 0.9. The paper replaces those by the mean of the five epochs before,
    all 0.2, so both summaries are 0.2; left in, they would lift the window mean to 0.2 + 0.7 x 38/100."""
    epochs = np.arange(1, 101)
    updates = discriminator_update_epochs(100, 5)
    spikes = {u + k for u in updates for k in (1, 2) if u + k <= 100}
    assert len(spikes) == 38
    values = [0.9 if e in spikes else 0.2 for e in epochs]
    history = pd.DataFrame({"epoch": epochs, "class_name": "dog", "informativity": values})
    summary = summarize(history, update_epochs=updates, window=(1, 100), moving_average_epochs=50)
    assert summary["window_average"]["dog"] == pytest.approx(0.2)
    assert summary["max_moving_average"]["dog"] == pytest.approx(0.2)
    assert summary["replaced_epochs"] == sorted(spikes)
    unreplaced = summarize(history, update_epochs=[], window=(1, 100), moving_average_epochs=50)
    assert unreplaced["window_average"]["dog"] == pytest.approx(0.2 + 0.7 * 38 / 100)
    # The paper's window starts at epoch 500 of 4000; here [51, 100]: 20 spike epochs of 50 when left in.
    late = summarize(history, update_epochs=[], window=(51, 100), moving_average_epochs=50)
    assert late["window_average"]["dog"] == pytest.approx(0.2 + 0.7 * 20 / 50)


# ---- candidates: per-image seeds, prefix-stable draws, growth to the target ---------------------------------------

CANDIDATE_CLASSES = {"baby_cry": "Baby cry", "dog": "Dog", "water_flowing": "Water flowing"}


def _tiny_generator(dim: int, seed: int):
    import torch

    from s2i_models import DenseGenerator

    torch.manual_seed(seed)
    return DenseGenerator(dim, width=0.0625, mc_dropout=True).eval()


def test_generate_with_seeds_does_not_depend_on_the_other_images():
    from s2i_models.translate import generate

    generator = _tiny_generator(128, 0)
    embeddings = np.tanh(np.random.default_rng(0).normal(size=(7, 128))).astype(np.float32)
    seeds = np.arange(14).reshape(7, 2) * 7919
    few = generate(generator, embeddings[:3], 2, seeds=seeds[:3], batch_size=8)
    more = generate(generator, embeddings, 2, seeds=seeds, batch_size=8)  # the first batch is now full
    assert few.shape == (3, 2, 96, 96, 3) and np.array_equal(few, more[:3])
    assert not np.array_equal(more[:, 0], more[:, 1])  # each sample its own dropout masks
    assert generator.arch.mc_dropout and not generator.training  # the hooks are gone, the switches back
    other = seeds.copy()
    other[0, 0] += 1
    changed = generate(generator, embeddings, 2, seeds=other, batch_size=8)
    assert not np.array_equal(changed[0, 0], more[0, 0]) and np.array_equal(changed[1:], more[1:])


def test_spread_order_starts_with_the_evenly_spaced_checkpoints():
    from pipelines.data.candidates import evenly_spaced, spread_order

    items = list(range(20))
    assert spread_order(20, 4)[:4] == evenly_spaced(items, 4) == [4, 9, 14, 19]
    # Then the middles of the widest gaps (later first on ties), then of the gaps those leave.
    assert spread_order(20, 4)[4:12] == [16, 11, 6, 1, 17, 12, 7, 2]
    assert sorted(spread_order(20, 4)) == items and spread_order(3, 4) == [0, 1, 2]


def test_sound_order_is_per_class_and_prefix_stable():
    from pipelines.data.candidates import sound_order

    keys = pd.DataFrame(
        {"clip_id": [f"v{i}" for i in range(12)], "class_name": ["dog", "rail"] * 6, "segment": 0}
    )
    order = sound_order(keys, seed=5)
    # Another row order and a class more give each class the same order of its own sounds.
    extra = pd.DataFrame({"clip_id": ["w0", "w1"], "class_name": "fire", "segment": 0})
    shuffled = pd.concat([keys, extra]).sample(frac=1.0, random_state=1).reset_index(drop=True)
    again = sound_order(shuffled, seed=5)
    for name in ("dog", "rail"):
        assert list(keys.clip_id[order[name]]) == list(shuffled.clip_id[again[name]])
    assert list(keys.clip_id[order["dog"]]) != sorted(keys.clip_id[order["dog"]])  # shuffled with the seed
    assert list(keys.clip_id[sound_order(keys, seed=6)["dog"]]) != list(keys.clip_id[order["dog"]])


def _candidate_pool(root, dims=(128,), checkpoints=3, sounds_per_class=6):
    """Tiny `audio_embeddings_{dim}` (validation sounds: 2 segments of each clip) and untrained
    `gan_{dim}` checkpoints (epochs 1..checkpoints), as `generate_candidates` reads them."""
    from s2i_models.checkpoint import save_atomic

    names = [name for name in CANDIDATE_CLASSES for _ in range(sounds_per_class)]
    keys = pd.DataFrame(
        {
            "clip_id": [f"{n}_{i // 2}" for n, i in zip(names, range(len(names)), strict=True)],
            "class_name": names,
            "segment": [i % 2 for i in range(len(names))],
        }
    )
    for dim in dims:
        folder = root / f"audio_embeddings_{dim}"
        folder.mkdir(parents=True)
        embeddings = np.tanh(np.random.default_rng(dim).normal(size=(len(keys), dim))).astype(np.float32)
        np.save(folder / "val.npy", embeddings)
        keys.to_parquet(folder / "val_keys.parquet")
        for epoch in range(1, checkpoints + 1):
            state = {"config": {"width": 0.0625, "generator": "dense"}}
            state["generator"] = _tiny_generator(dim, dim + epoch).state_dict()
            save_atomic(
                state, root / f"gan_{dim}" / "train" / "run" / "checkpoints" / f"epoch-{epoch:05d}.pt"
            )


def _settings(**evaluation):
    from pipelines.profile import load_profile

    settings = load_profile("demo")
    defaults = {
        "labels": "person",
        "candidate_dims": [128],
        "candidate_samples": 1,
        "min_labels_per_class": 2,
    }
    update = {"evaluation": settings.evaluation.model_copy(update={**defaults, **evaluation})}
    return settings.model_copy(update={"classes": CANDIDATE_CLASSES, **update})


def _candidates(root, settings, book_path=None):
    from pipelines.data.evaluation_steps import candidate_sources, generate_candidates
    from pipelines.data.steps import ArtifactFolders

    folders = ArtifactFolders(root)
    sources = candidate_sources(folders, settings.evaluation)
    output = generate_candidates(folders, settings, sources, "cpu", log=lambda _: None, book_path=book_path)
    folder = root / "informativity_candidates"
    draws = json.loads((folder / "draws.json").read_text())
    return pd.read_parquet(folder / "candidates.parquet"), draws, output.metadata


def test_candidates_of_a_larger_draw_keep_every_image_byte_for_byte(tmp_path):
    """More sounds, checkpoints and dims drawn: the first draw's candidates are all there, same ids and sha256."""
    _candidate_pool(tmp_path, dims=(128, 256), checkpoints=3)
    small, _, _ = _candidates(
        tmp_path,
        _settings(candidate_sounds_per_class=2, checkpoints_per_dim=1, candidate_samples=2),
    )
    large, draws, _ = _candidates(
        tmp_path,
        _settings(
            candidate_dims=[128, 256],
            candidate_sounds_per_class=5,
            checkpoints_per_dim=3,
            candidate_samples=2,
        ),
    )
    assert len(small) == 3 * 2 * 1 * 2 and len(large) == 3 * 5 * (3 + 3) * 2
    assert {d["sounds"] for d in draws.values()} == {5}  # a person with no answers: the base draw
    kept = small.merge(large, on="candidate_id", suffixes=("", "_large"))
    assert len(kept) == len(small)
    for column in ("sha256", "class_name", "clip_id", "segment", "dim", "epoch", "sample"):
        assert (kept[column] == kept[f"{column}_large"]).all(), column
    # The evenly spaced checkpoint (the last) comes first; the labelling order mixes classes.
    assert set(small.epoch) == {3}
    assert list(large.candidate_id) == sorted(large.candidate_id) and large.class_name.head(6).nunique() > 1
    images = sorted((tmp_path / "informativity_candidates" / "images").glob("*.png"))
    assert len(images) == len(large) and set(small.image) <= set(large.image)  # the same file names


class _CountingOracle:
    """A stand-in for the demo's oracle: of the images of a class it is shown, every `period[class]`-th is
    informative (the 1st, the period+1-th, ...). It goes by the order it sees images in, not by their pixels,
    whose last bits differ from one CPU to another."""

    def __init__(self, period: dict[str, int]) -> None:
        self.period, self.seen = period, dict.fromkeys(period, 0)

    def margins(self, images, class_names):
        margins = []
        for name in class_names:
            margins.append(0.9 if self.seen[name] % self.period[name] == 0 else 0.0)
            self.seen[name] += 1
        return np.array(margins)

    def informative(self, images, class_names):
        return self.margins(images, class_names) >= 0.5


def _with_oracle(monkeypatch, period):
    from pipelines.data import evaluation_steps

    fits = []

    def fit(folders, settings):
        fits.append(1)
        return _CountingOracle(period), {"top_answer_accuracy": 1.0, "informative_share": 1.0}

    monkeypatch.setattr(evaluation_steps, "fit_oracle", fit)
    return fits


def _labels(root, settings):
    from pipelines.data.evaluation_steps import check_labels_reach_target, label_candidates
    from pipelines.data.steps import ArtifactFolders

    folders = ArtifactFolders(root)
    label_candidates(folders, settings, root / "answers.json", log=lambda _: None, warn=lambda _: None)
    return pd.read_parquet(root / "informativity_labels" / "labels.parquet"), check_labels_reach_target(
        folders
    )


def test_a_class_with_few_informative_candidates_draws_more_up_to_its_target(tmp_path, monkeypatch):
    fits = _with_oracle(monkeypatch, {"baby_cry": 2, "dog": 12, "water_flowing": 2})
    _candidate_pool(tmp_path, checkpoints=4, sounds_per_class=12)
    settings = _settings(
        labels="oracle",
        labels_per_class=3,
        candidate_sounds_per_class=6,
        checkpoints_per_dim=2,
        candidate_samples=2,
    )
    table, draws, metadata = _candidates(tmp_path, settings)
    counts = table.class_name.value_counts()
    # Base draw: 6 sounds x 2 checkpoints x 2 samples = 24 a class. Every 2nd image informative: 12 pairs.
    assert counts["baby_cry"] == counts["water_flowing"] == 24
    # Dog, every 12th: one informative image per checkpoint, 2 pairs of 3. It draws 6 x 1.1 x 3 / 2 -> 10
    # sounds, whose 16 new images give each checkpoint one more informative image: 4 pairs.
    assert counts["dog"] == 10 * 2 * 2 and draws["dog"]["sounds"] == 10 and draws["dog"]["checkpoints"] == 2
    assert draws["dog"]["expected_pairs"] == 4 and not draws["dog"]["exhausted"]
    assert metadata["pool_exhausted"] == [] and metadata["growth_rounds"] == 2
    assert table.margin.notna().all()

    labels, check = _labels(tmp_path, settings)
    assert fits == [1]  # the label step used the margins stored with the candidates
    assert check.passed and (labels.groupby("class_name").label.sum() == 3).all()
    stored = table.set_index("candidate_id").margin >= settings.evaluation.oracle_margin
    assert (stored[labels.candidate_id].astype(int).to_numpy() == labels.label.to_numpy()).all()


def test_a_class_that_cannot_reach_its_target_takes_the_whole_pool_and_fails_the_check(tmp_path, monkeypatch):
    _with_oracle(monkeypatch, {"baby_cry": 2, "dog": 10, "water_flowing": 2})
    _candidate_pool(tmp_path, checkpoints=3, sounds_per_class=6)
    settings = _settings(
        labels="oracle",
        labels_per_class=12,
        candidate_sounds_per_class=2,
        checkpoints_per_dim=1,
        candidate_samples=4,
    )
    table, draws, metadata = _candidates(tmp_path, settings)
    assert draws["dog"]["exhausted"] and draws["dog"]["sounds"] == 6 and draws["dog"]["checkpoints"] == 3
    assert (table.class_name == "dog").sum() == 6 * 3 * 4  # every sound x checkpoint x sample
    assert metadata["pool_exhausted"] == ["dog"]  # the others reach 12 pairs on the way
    _, check = _labels(tmp_path, settings)
    assert not check.passed and "dog" in check.metadata["classes_short"]
    pairs = int(draws["dog"]["expected_pairs"])
    assert f"class dog: {pairs} of 12 informative labels; pool exhausted: add models" in check.description


def test_a_persons_answers_set_how_much_a_class_draws(tmp_path):
    from pipelines.data.answers import AnswerBook

    _candidate_pool(tmp_path, checkpoints=3, sounds_per_class=12)
    settings = _settings(
        labels_per_class=6, candidate_sounds_per_class=4, checkpoints_per_dim=1, candidate_samples=2
    )
    book_path = tmp_path / "answers.json"
    base, draws, _ = _candidates(tmp_path, settings, book_path)
    assert base.class_name.value_counts().to_dict() == {name: 8 for name in CANDIDATE_CLASSES}

    # Dog: 1 informative in 8 answers (a rate of 1/8 pair a candidate, so about 48 candidates for 6 pairs);
    # baby cry: half informative (8 candidates give 4 pairs: 6 need 12); water flowing: no answer yet.
    book = AnswerBook(book_path)
    for name, rate in (("dog", 1), ("baby_cry", 4)):
        for i, row in enumerate(base[base.class_name == name].itertuples()):
            label = "informative" if i < rate else "non_informative"
            book.record(row.sha256, label, candidate_id=row.candidate_id, class_name=name, labeller="test")
    grown, draws, metadata = _candidates(tmp_path, settings, book_path)
    counts = grown.class_name.value_counts()
    assert counts["water_flowing"] == 8 and draws["water_flowing"]["expected_pairs"] is None
    assert 12 <= counts["baby_cry"] < counts["dog"] and counts["dog"] >= 48
    assert draws["dog"]["expected_pairs"] >= 6 and "1 pairs in 8 answers" in draws["dog"]["estimate"]
    assert set(base.sha256) <= set(grown.sha256)  # drawing more kept every answered image

    # A draw never shrinks below an answered candidate: answer one of dog's new candidates, then make dog
    # look easy (every earlier answer informative or not in turn): it keeps that candidate.
    new = grown[(grown.class_name == "dog") & ~grown.sha256.isin(base.sha256)].iloc[-1]
    book.record(new.sha256, "skip", candidate_id=new.candidate_id, class_name="dog", labeller="test")
    for i, row in enumerate(base[base.class_name == "dog"].itertuples()):
        label = "informative" if i % 2 else "non_informative"
        book.record(row.sha256, label, candidate_id=row.candidate_id, class_name="dog", labeller="test")
    again, draws, _ = _candidates(tmp_path, settings, book_path)
    assert new.sha256 in set(again.sha256)
