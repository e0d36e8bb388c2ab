"""Losses, in-memory and streamed data, checkpoints, and the two training loops of s2i_models (SPEC §4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipelines.data.shards import Sample, write_shard
from pipelines.data.stats import scale_mel
from s2i_models.checkpoint import CheckpointError, load_checkpoint, save_atomic
from s2i_models.loaders import (
    InMemoryBatches,
    ShardStream,
    fits_in_memory,
    image_batch,
    images_to_uint8,
    spectrogram_batch,
)
from s2i_models.losses import (
    MovingAverageAdversarial,
    adversarial_batch_loss,
    autoencoder_loss,
    discriminator_loss,
    pixel_loss,
)
from s2i_models.train import TrainingDiverged
from s2i_models.train.autoencoder import AutoencoderConfig, train_autoencoder
from s2i_models.train.gan import GanConfig, build_networks, train_gan

DIM, WIDTH, N, BATCH = 128, 0.0625, 48, 16  # 3 batches an epoch
STATS = {"min": -12.0, "max": 3.0}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "mels": rng.normal(-5.0, 2.5, (N, 100, 128)).astype(np.float16),
        "frames": rng.integers(0, 256, (N, 96, 96, 3), dtype=np.uint8),
        "embeddings": np.tanh(rng.normal(size=(N, DIM))).astype(np.float32),
    }


def ae_config(**changes) -> AutoencoderConfig:
    return AutoencoderConfig(**({"dim": DIM, "width": WIDTH, "epochs": 2, "batch_size": BATCH} | changes))


def gan_config(**changes) -> GanConfig:
    settings = {"dim": DIM, "width": WIDTH, "epochs": 2, "batch_size": BATCH, "discriminator_every": 2}
    return GanConfig(**(settings | changes))


def mel_batches(data, mels=None, **options) -> InMemoryBatches:
    return InMemoryBatches(
        device="cpu", mels=data["mels"] if mels is None else mels, batch_size=BATCH, **options
    )


def gan_batches(data, embeddings=None) -> InMemoryBatches:
    embeddings = data["embeddings"] if embeddings is None else embeddings
    return InMemoryBatches(device="cpu", frames=data["frames"], embeddings=embeddings, batch_size=BATCH)


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def same_state(a: dict, b: dict) -> bool:
    return all(torch.equal(a[key], b[key]) for key in a)


def without_time(history: list[dict]) -> list[dict]:
    """Records without timings, NaN as None (NaN != NaN would fail every comparison)."""
    return [
        {k: None if v != v else v for k, v in record.items() if k not in ("seconds", "samples_per_second")}
        for record in history
    ]


# ---- losses --------------------------------------------------------------------------------------------------


def test_losses_on_hand_made_tensors():
    spec = torch.zeros(2, 1, 128, 100)
    assert autoencoder_loss(spec, spec + 0.5).item() == pytest.approx(0.25)
    images = torch.full((2, 3, 96, 96), -1.0)
    generated = images.clone()
    generated[0] = 1.0  # half the values off by 2
    assert pixel_loss(images, generated).item() == pytest.approx(2.0)
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # real: ((1-1)^2 + (1-0)^2)/2 = 0.5; fake: ((-1+1)^2 + (-1-1)^2)/2 = 2
    assert discriminator_loss(real, fake).item() == pytest.approx(2.5)
    assert discriminator_loss(real, fake, r_max=0.5, r_min=-0.5).item() == pytest.approx(
        (0.25 + 0.25) / 2 + (0.25 + 2.25) / 2
    )
    assert adversarial_batch_loss(fake).item() == pytest.approx((4 + 0) / 2)
    assert adversarial_batch_loss(torch.tensor([0.5, 0.5], dtype=torch.bfloat16)).dtype == torch.float32


def test_moving_average_adversarial_value_gradient_and_state():
    average = MovingAverageAdversarial(k=3)
    epoch_means = [2.0, 4.0, 6.0]
    # the previous k-1 = 2 epoch means each epoch sees; early epochs divide by 1 + how many exist
    for epoch, previous in enumerate([[], [2.0], [2.0, 4.0], [4.0, 6.0]]):
        divisor = 1 + len(previous)
        score = torch.tensor([0.0, 0.5], requires_grad=True)
        value = average(adversarial_batch_loss(score))  # batch loss ((1)^2 + (0.5)^2) / 2 = 0.625
        assert value.item() == pytest.approx((0.625 + sum(previous)) / divisor)
        value.backward()
        reference = score.detach().clone().requires_grad_()
        adversarial_batch_loss(reference).backward()
        assert torch.allclose(score.grad, reference.grad / divisor)  # gradient: the batch loss's / k
        if epoch < len(epoch_means):
            average.end_epoch(epoch_means[epoch])
    restored = MovingAverageAdversarial(k=3)
    restored.load_state_dict(average.state_dict())
    assert restored(torch.tensor(1.0)).item() == pytest.approx((1.0 + 4.0 + 6.0) / 3)
    single = MovingAverageAdversarial(k=1)
    single.end_epoch(5.0)
    assert single(torch.tensor(2.0)).item() == 2.0
    with pytest.raises(ValueError, match="k"):
        MovingAverageAdversarial(k=0)


# ---- network inputs and loaders ----------------------------------------------------------------------------


def test_spectrogram_batch_scales_like_the_stats_and_transposes(data):
    mels = torch.from_numpy(data["mels"][:4])  # (4, 100, 128) time x mel
    batch = spectrogram_batch(mels, STATS)
    assert batch.shape == (4, 1, 128, 100) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1
    expected = scale_mel(data["mels"][:4], STATS)  # (4, 100, 128), the data chain's own scaling
    assert np.allclose(batch[:, 0].transpose(1, 2).numpy(), expected, atol=1e-6)
    assert spectrogram_batch(torch.full((1, 100, 128), 100.0), STATS).eq(1).all()  # clipped
    assert spectrogram_batch(torch.full((1, 100, 128), math.nan), STATS).isnan().all()  # not hidden


def test_image_batch_and_back(data):
    frames = torch.from_numpy(data["frames"][:3])
    images = image_batch(frames)
    assert images.shape == (3, 3, 96, 96) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert images[1, 2, 5, 7].item() == pytest.approx(data["frames"][1, 5, 7, 2] / 127.5 - 1)
    assert torch.equal(images_to_uint8(images), frames)
    assert torch.equal(
        images_to_uint8(torch.full((1, 3, 96, 96), 3.0)), torch.full((1, 96, 96, 3), 255, dtype=torch.uint8)
    )


def test_in_memory_batches_are_seeded_shuffled_epochs_and_resumable(data):
    embeddings = torch.arange(N, dtype=torch.float32)[:, None].repeat(1, 4)  # row i holds i
    batches = InMemoryBatches(device="cpu", mels=data["mels"], embeddings=embeddings, batch_size=10, seed=3)
    assert len(batches) == 5 and batches.fields == ("mels", "embeddings")
    first = [batch["embeddings"][:, 0].long() for batch in batches]
    order = torch.cat(first)
    assert sorted(order.tolist()) == list(range(N)) and order.tolist() != list(range(N))
    batch = next(iter(batches))
    index = batch["embeddings"][:, 0].long()
    assert batch["mels"].dtype == torch.float16 and torch.equal(
        batch["mels"], torch.from_numpy(data["mels"])[index]
    )
    state = batches.state()
    expected_next = torch.cat([b["embeddings"][:, 0] for b in batches])
    again = InMemoryBatches(device="cpu", mels=data["mels"], embeddings=embeddings, batch_size=10, seed=99)
    again.load_state(state)
    assert torch.equal(torch.cat([b["embeddings"][:, 0] for b in again]), expected_next)
    same_seed = InMemoryBatches(device="cpu", embeddings=embeddings, batch_size=10, seed=3)
    assert torch.equal(torch.cat([b["embeddings"][:, 0].long() for b in same_seed]), order)
    assert len(InMemoryBatches(device="cpu", mels=data["mels"], batch_size=10, drop_last=True)) == 4
    in_order = InMemoryBatches(device="cpu", embeddings=embeddings, batch_size=10, shuffle=False)
    assert torch.cat([b["embeddings"][:, 0] for b in in_order]).tolist() == list(range(N))
    with pytest.raises(ValueError, match="different numbers"):
        InMemoryBatches(device="cpu", mels=data["mels"], embeddings=embeddings[:5])


def test_fits_in_memory():
    assert fits_in_memory(10, 53_248, "cpu")
    assert not fits_in_memory(10**9, 53_248, "cpu")


def test_shard_stream_yields_the_in_memory_samples(tmp_path, data):
    samples = [
        Sample(f"c001_s{i:05d}_w000", data["mels"][i], data["frames"][i], {"clip_id": f"c{i}", "segment": 0})
        for i in range(N)
    ]
    shards = [tmp_path / "train-000000.tar", tmp_path / "train-000001.tar", tmp_path / "train-000002.tar"]
    write_shard(shards[0], samples[:20])
    write_shard(shards[1], samples[20:40], frame_format="png")
    write_shard(shards[2], samples[40:])
    embeddings = torch.arange(N, dtype=torch.float32)[:, None].repeat(1, 4)  # row i holds i
    stream = ShardStream(shards, device="cpu", embeddings=embeddings, batch_size=10, seed=1, buffer_size=8)
    memory = InMemoryBatches(
        device="cpu", frames=data["frames"], mels=data["mels"], embeddings=embeddings, batch_size=10
    )
    assert stream.n_samples == N and len(stream) == len(memory) == 5
    assert stream.fields == ("frames", "mels", "embeddings")

    def by_sample(loader) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        seen = {}
        for batch in loader:
            assert batch["frames"].dtype == torch.uint8 and batch["mels"].dtype == torch.float16
            for frame, mel, embedding in zip(
                batch["frames"], batch["mels"], batch["embeddings"], strict=True
            ):
                seen[int(embedding[0])] = (frame, mel)
        return seen

    streamed, held = by_sample(stream), by_sample(memory)
    assert sorted(streamed) == list(range(N))
    for index in range(N):  # the embedding found each sample's own frame and mel
        assert torch.equal(streamed[index][0], held[index][0]) and torch.equal(
            streamed[index][1], held[index][1]
        )

    def order(loader) -> list[int]:
        return [int(e) for batch in loader for e in batch["embeddings"][:, 0]]

    state = stream.state()
    second_epoch = order(stream)
    assert second_epoch != order(stream)  # each epoch its own order
    resumed = ShardStream(shards, device="cpu", embeddings=embeddings, batch_size=10, seed=7, buffer_size=8)
    resumed.load_state(state)
    assert order(resumed) == second_epoch
    in_order = ShardStream(shards, device="cpu", fields=("mels",), batch_size=10, shuffle=False)
    assert torch.equal(torch.cat([b["mels"] for b in in_order]), torch.from_numpy(data["mels"]))


# ---- checkpoints ---------------------------------------------------------------------------------------------


def test_save_atomic_and_load_checkpoint(tmp_path):
    path = tmp_path / "sub" / "state.pt"
    save_atomic({"epoch": 3, "weights": torch.ones(2), "history": [{"loss": math.nan}]}, path)
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]  # no temp left behind
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["weights"], torch.ones(2))
    path.write_bytes(path.read_bytes()[:50])  # truncated
    with pytest.raises(CheckpointError, match="state.pt"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


# ---- one step lowers the loss -----------------------------------------------------------------------------------


def test_one_autoencoder_step_lowers_its_loss(data):
    from s2i_models.autoencoder import AudioAutoencoder

    torch.manual_seed(0)
    model = AudioAutoencoder(DIM, width=WIDTH).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    spec = spectrogram_batch(torch.from_numpy(data["mels"][:16]), STATS)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same dropout masks both times
        return autoencoder_loss(spec, model(spec)[0])

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert loss().item() < before.item()


def test_one_generator_step_lowers_its_loss(data):
    torch.manual_seed(0)
    generator, _ = build_networks(gan_config())
    generator.train()
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.1, momentum=0.5)
    images = image_batch(torch.from_numpy(data["frames"][:16]))
    embeddings = torch.from_numpy(data["embeddings"][:16])

    def loss() -> torch.Tensor:
        torch.manual_seed(1)
        return pixel_loss(images, generator(embeddings))

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert loss().item() < before.item()


# ---- autoencoder training -------------------------------------------------------------------------------------------


def test_autoencoder_trains_writes_checkpoints_and_reports(tmp_path, data):
    records = []
    result = train_autoencoder(
        ae_config(),
        mel_batches(data),
        mel_batches(data, shuffle=False),
        STATS,
        tmp_path,
        on_epoch=records.append,
    )
    assert [r["epoch"] for r in result.history] == [1, 2] and records == result.history
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "seconds", "samples_per_second"}
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in result.history)
    assert result.final_checkpoint == tmp_path / "autoencoder.pt" and result.resumed_from is None
    final = torch.load(result.final_checkpoint, weights_only=True)
    assert final["epoch"] == 2 and final["config"]["dim"] == DIM and final["stats"] == STATS
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]] == [1, 2]
    assert_same_state(state["model"], final["model"])
    assert not list(tmp_path.glob(".tmp-*"))


def test_autoencoder_resume_gives_the_uninterrupted_weights(tmp_path, data):
    straight = train_autoencoder(ae_config(epochs=3), mel_batches(data), None, STATS, tmp_path / "straight")
    train_autoencoder(
        ae_config(epochs=1), mel_batches(data), None, STATS, tmp_path / "killed"
    )  # "killed" after 1
    resumed = train_autoencoder(
        ae_config(epochs=3), mel_batches(data, seed=5), None, STATS, tmp_path / "killed"
    )
    assert resumed.resumed_from == 1
    assert without_time(resumed.history) == without_time(straight.history)
    assert_same_state(
        load_checkpoint(straight.final_checkpoint)["model"],
        load_checkpoint(resumed.final_checkpoint)["model"],
    )


def test_autoencoder_resume_refuses_changed_settings(tmp_path, data):
    train_autoencoder(ae_config(epochs=2), mel_batches(data), None, STATS, tmp_path)
    with pytest.raises(ValueError, match=r"lr: 0\.05 -> 0\.01") as error:
        train_autoencoder(ae_config(epochs=3, lr=0.01), mel_batches(data), None, STATS, tmp_path)
    assert str(tmp_path) in str(error.value) and "Delete" in str(error.value)
    with pytest.raises(ValueError, match="scaling"):
        train_autoencoder(ae_config(epochs=3), mel_batches(data), None, {"min": -10.0, "max": 3.0}, tmp_path)
    with pytest.raises(ValueError, match="past the requested 1 epochs"):
        train_autoencoder(ae_config(epochs=1), mel_batches(data), None, STATS, tmp_path)
    fresh = train_autoencoder(
        ae_config(epochs=1, lr=0.01), mel_batches(data), None, STATS, tmp_path, resume=False
    )
    assert fresh.resumed_from is None and len(fresh.history) == 1


def test_autoencoder_nan_stops_with_the_epoch_and_keeps_the_last_checkpoint(tmp_path, data):
    train_autoencoder(ae_config(epochs=1), mel_batches(data), None, STATS, tmp_path)
    broken = data["mels"].copy()
    broken[7, 3, 5] = np.nan
    with pytest.raises(TrainingDiverged, match=r"epoch 2: train_loss \(Eq\. 1\) = nan"):
        train_autoencoder(ae_config(epochs=3), mel_batches(data, mels=broken), None, STATS, tmp_path)
    assert load_checkpoint(tmp_path / "resume.pt")["epoch"] == 1


def test_autoencoder_refuses_a_last_batch_of_one(tmp_path, data):
    with pytest.raises(ValueError, match="last batch holds 1 sample"):
        train_autoencoder(ae_config(), mel_batches(data, mels=data["mels"][:17]), None, STATS, tmp_path)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs_on_cpu(tmp_path, data, precision):
    ae = train_autoencoder(
        ae_config(epochs=1, precision=precision), mel_batches(data), None, STATS, tmp_path / "ae"
    )
    gan = train_gan(
        gan_config(epochs=1, precision=precision, discriminator_every=1), gan_batches(data), tmp_path / "gan"
    )
    assert math.isfinite(ae.history[0]["train_loss"])
    assert all(
        math.isfinite(gan.history[0][k]) for k in ("pixel_loss", "generator_loss", "discriminator_loss")
    )


# ---- GAN training ------------------------------------------------------------------------------------------------


def test_gan_checkpoints_all_present_and_loadable(tmp_path, data):
    records = []
    result = train_gan(
        gan_config(epochs=3, checkpoint_every=2), gan_batches(data), tmp_path, on_epoch=records.append
    )
    assert records == result.history and [r["epoch"] for r in result.history] == [1, 2, 3]
    assert set(result.history[0]) == {
        "epoch", "pixel_loss", "adversarial_batch_loss", "adversarial_ma_loss", "generator_loss",
        "discriminator_loss", "d_updates", "seconds", "samples_per_second",
    }  # fmt: skip
    names = ["epoch-00002.pt", "epoch-00003.pt"]
    assert [p.name for p in result.checkpoints] == names and result.final_checkpoint.name == names[-1]
    for path in result.checkpoints:
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint.keys() == {"epoch", "generator", "discriminator", "config"}
        assert checkpoint["epoch"] == int(path.stem[-5:]) and checkpoint["config"]["dim"] == DIM
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert state["epoch"] == 3 and state["step"] == 9
    # Eq. 5 in the history: epoch 2 averages its batch loss with epoch 1's mean (k = 5: all previous epochs)
    first, second = result.history[0], result.history[1]
    assert first["adversarial_ma_loss"] == pytest.approx(first["adversarial_batch_loss"])
    assert second["adversarial_ma_loss"] == pytest.approx(
        (second["adversarial_batch_loss"] + first["adversarial_batch_loss"]) / 2, rel=1e-5
    )


def test_gan_resume_gives_the_uninterrupted_weights(tmp_path, data):
    config = gan_config(epochs=3, adversarial_average_epochs=2)
    straight = train_gan(config, gan_batches(data), tmp_path / "straight")
    train_gan(gan_config(epochs=1, adversarial_average_epochs=2), gan_batches(data), tmp_path / "killed")
    resumed = train_gan(config, gan_batches(data), tmp_path / "killed")
    assert resumed.resumed_from == 1 and [r["d_updates"] for r in resumed.history] == [0, 3, 0]
    assert without_time(resumed.history) == without_time(straight.history)
    a, b = load_checkpoint(straight.final_checkpoint), load_checkpoint(resumed.final_checkpoint)
    assert_same_state(a["generator"], b["generator"])
    assert_same_state(a["discriminator"], b["discriminator"])


def test_gan_discriminator_trains_only_in_every_n_gd_th_epoch(tmp_path, data):
    config = gan_config(epochs=4, discriminator_every=2, checkpoint_every=1)
    result = train_gan(config, gan_batches(data), tmp_path)
    assert [r["d_updates"] for r in result.history] == [0, 3, 0, 3]
    assert [math.isnan(r["discriminator_loss"]) for r in result.history] == [True, False, True, False]
    torch.manual_seed(config.seed)
    _, initial = build_networks(config)
    states = [initial.state_dict()] + [load_checkpoint(p)["discriminator"] for p in result.checkpoints]
    changed = [not same_state(before, after) for before, after in zip(states, states[1:], strict=False)]
    assert changed == [False, True, False, True]  # D (weights and BN statistics) moves only in epochs 2 and 4
    generators = [load_checkpoint(p)["generator"] for p in result.checkpoints]
    assert all(not same_state(a, b) for a, b in zip(generators, generators[1:], strict=False))


def test_gan_discriminator_trains_on_every_n_gd_th_step(tmp_path, data):
    # 3 batches an epoch, global steps 1-6; n_gd = 2 -> D updates at steps 2 | 4, 6
    result = train_gan(
        gan_config(discriminator_every=2, discriminator_unit="step"), gan_batches(data), tmp_path
    )
    assert [r["d_updates"] for r in result.history] == [1, 2]
    result = train_gan(
        gan_config(discriminator_every=4, discriminator_unit="step"), gan_batches(data), tmp_path / "four"
    )
    assert [r["d_updates"] for r in result.history] == [0, 1]  # step 4 only


def test_gan_inf_stops_with_the_epoch_and_the_loss_term(tmp_path, data):
    train_gan(gan_config(epochs=1), gan_batches(data), tmp_path)
    broken = data["embeddings"].copy()
    broken[11, 0] = np.inf
    with pytest.raises(TrainingDiverged, match=r"epoch 2: pixel_loss \(Eq\. 3\) = nan") as error:
        train_gan(gan_config(epochs=2), gan_batches(data, embeddings=broken), tmp_path)
    assert "last good checkpoint" in str(error.value) and "epoch 1" in str(error.value)
    assert load_checkpoint(tmp_path / "resume.pt")["epoch"] == 1
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["epoch-00001.pt"]


def test_gan_resume_refuses_changed_settings(tmp_path, data):
    train_gan(gan_config(epochs=1), gan_batches(data), tmp_path)
    with pytest.raises(ValueError, match="discriminator_unit: 'epoch' -> 'step'"):
        train_gan(gan_config(epochs=2, discriminator_unit="step"), gan_batches(data), tmp_path)
    with pytest.raises(ValueError, match="lacks embeddings"):
        train_gan(gan_config(), InMemoryBatches(device="cpu", frames=data["frames"]), tmp_path)


def test_compile_is_a_run_option_not_a_setting(tmp_path):
    from dataclasses import asdict

    from s2i_models.train import check_same_config

    saved = asdict(gan_config(epochs=1))
    check_same_config(saved, gan_config(epochs=3, compile=True), tmp_path / "resume.pt")  # no error
    with pytest.raises(ValueError, match="lr: 0.1 -> 0.2"):
        check_same_config(saved, gan_config(epochs=3, compile=True, lr=0.2), tmp_path / "resume.pt")


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="precision"):
        ae_config(precision="fp8")
    with pytest.raises(ValueError, match="discriminator_unit"):
        gan_config(discriminator_unit="batch")
    with pytest.raises(ValueError, match="generator"):
        gan_config(generator="unet")
    with pytest.raises(ValueError, match="epochs"):
        gan_config(epochs=0)


def test_sequential_generator_and_progress_bar_run(tmp_path, data, capsys):
    result = train_gan(
        gan_config(epochs=1, generator="sequential"), gan_batches(data), tmp_path, progress=True
    )
    assert math.isfinite(result.history[0]["pixel_loss"])
    assert "GAN 128" in capsys.readouterr().err


def _judges(seed: int = 0) -> dict:
    """Two small classifiers with random weights: judges that answer differently for different images."""
    from s2i_models.informativity import InformativityClassifier

    torch.manual_seed(seed)
    judges = {}
    for name, bias in (("dog", 2.0), ("water_flowing", -0.2)):
        judge = InformativityClassifier(width=0.5).eval()
        with torch.no_grad():
            judge.head[-1].bias.copy_(torch.tensor([0.0, bias]))
        judges[name] = judge
    return judges


def test_gan_records_informativity_every_epoch_without_changing_training(tmp_path, data):
    from s2i_models.scoring import EpochJudge

    names = ["dog"] * 10 + ["water_flowing"] * 14
    test_embeddings = np.tanh(np.random.default_rng(1).normal(size=(24, DIM))).astype(np.float32)
    config = gan_config(epochs=3)

    def judge():
        return EpochJudge(test_embeddings, names, _judges(), seed=5, batch_size=7)

    plain = train_gan(config, gan_batches(data), tmp_path / "plain")
    judged = train_gan(config, gan_batches(data), tmp_path / "judged", judge=judge())
    # Judging translates with dropout on, but puts the random state back: training is unchanged.
    a, b = load_checkpoint(plain.final_checkpoint), load_checkpoint(judged.final_checkpoint)
    assert_same_state(a["generator"], b["generator"])
    assert_same_state(a["discriminator"], b["discriminator"])
    assert [r["epoch"] for r in judged.history] == [1, 2, 3]
    for record in judged.history:
        shares = [record["informativity_dog"], record["informativity_water_flowing"]]
        assert all(0 <= s <= 1 for s in shares)
        assert record["informativity"] == pytest.approx(sum(shares) / 2)
        assert record["informativity_dog"] * 10 == pytest.approx(round(record["informativity_dog"] * 10))
        assert record["judge_seconds"] >= 0
    assert "informativity" not in plain.history[0]

    # Killed after epoch 1 and resumed: the same per-epoch values, from the resume state.
    train_gan(gan_config(epochs=1), gan_batches(data), tmp_path / "killed", judge=judge())
    resumed = train_gan(config, gan_batches(data), tmp_path / "killed", judge=judge())
    keys = ["epoch", "informativity_dog", "informativity_water_flowing"]
    assert [{k: r[k] for k in keys} for r in resumed.history] == [
        {k: r[k] for k in keys} for r in judged.history
    ]

    with pytest.raises(ValueError, match=r"no judge for the test sounds of \['cat'\]"):
        EpochJudge(test_embeddings[:2], ["dog", "cat"], _judges(), seed=0)


def _events(folder) -> dict:
    """{tag: [(step, value)]} of the scalars and {tag: [steps]} of the images in a run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {t: [(e.step, e.value) for e in accumulator.Scalars(t)] for t in tags["scalars"]}
    images = {t: [e.step for e in accumulator.Images(t)] for t in tags["images"]}
    return {"scalars": scalars, "images": images}


def test_training_writes_tensorboard_curves_and_images_once_per_epoch_across_a_resume(tmp_path, data):
    from s2i_models.scoring import EpochJudge

    preview = torch.from_numpy(data["embeddings"][:4])
    judge = EpochJudge(data["embeddings"][:6], ["dog", "water_flowing"] * 3, _judges(), seed=1)
    # Killed after epoch 1 (its checkpoint kept), then resumed to epoch 3.
    train_gan(gan_config(epochs=1, checkpoint_every=1), gan_batches(data), tmp_path, judge=judge)
    train_gan(
        gan_config(epochs=3, checkpoint_every=1),
        gan_batches(data),
        tmp_path,
        judge=judge,
        preview_embeddings=preview,
    )
    events = _events(tmp_path)
    for tag in (
        "gan/pixel_loss",
        "gan/generator_loss",
        "gan/informativity",
        "gan/informativity_dog",
        "gan/lr",
    ):
        assert [step for step, _ in events["scalars"][tag]] == [1, 2, 3], tag
    assert [step for step, _ in events["scalars"]["gan/discriminator_loss"]] == [2]  # D trains in epoch 2
    assert events["images"]["gan/validation_sounds"] == [2, 3]  # checkpoints of the resumed run

    result = train_autoencoder(
        ae_config(epochs=2), mel_batches(data), mel_batches(data), STATS, tmp_path / "ae"
    )
    curves = _events(tmp_path / "ae")["scalars"]
    assert [v for _, v in curves["autoencoder/train_loss"]] == pytest.approx(
        [r["train_loss"] for r in result.history]
    )
    assert [s for s, _ in curves["autoencoder/val_loss"]] == [1, 2]
