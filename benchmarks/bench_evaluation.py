"""Cost of measuring informativity at every epoch, and the time `dagster dev` and every run wait for the
definitions to load.

1. Per-epoch judging (`s2i_models.scoring.EpochJudge`, run inside `train_gan`) as a share of a training
   epoch, with the test set in the paper's proportion to the training set (6,825 / 48,945) at the demo's
   width and at the paper's. Beside it, the naive way (save the epoch's checkpoint, load it back and score
   it as the checkpoint path does) and the floor (the generator's forward pass over the test sounds alone).
   Epochs without a discriminator update are timed: four epochs in five (n_gd = 5).
2. Loading `pipelines.definitions` against `import dagster` alone, best of 5, each in a fresh interpreter,
   and which heavy libraries the load pulls in.

    python benchmarks/bench_evaluation.py [--full-width-train 128]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAPER_TEST_PER_TRAIN = 6825 / 48945
CLASSES = ("baby_cry", "dog", "rail_transport", "fireworks", "water_flowing")
HEAVY = ("numpy", "pandas", "pyarrow", "torch", "PIL", "matplotlib")


def judging_case(width: float, train: int, batch_size: int) -> dict:
    import numpy as np
    import torch

    from s2i_models.checkpoint import save_atomic
    from s2i_models.informativity import InformativityClassifier
    from s2i_models.loaders import InMemoryBatches
    from s2i_models.scoring import EpochJudge, score_translations
    from s2i_models.train.gan import GanConfig, train_gan
    from s2i_models.translate import load_generator

    dim = 512
    test = max(len(CLASSES), round(train * PAPER_TEST_PER_TRAIN))
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 256, (train, 96, 96, 3), dtype=np.uint8))
    embeddings = torch.from_numpy(np.tanh(rng.normal(size=(train, dim))).astype(np.float32))
    test_embeddings = np.tanh(rng.normal(size=(test, dim))).astype(np.float32)
    names = [CLASSES[i % len(CLASSES)] for i in range(test)]
    torch.manual_seed(0)
    judges = {name: InformativityClassifier().eval() for name in CLASSES}  # the paper's classifier size
    judge = EpochJudge(test_embeddings, names, judges, seed=0)
    config = GanConfig(dim=dim, width=width, epochs=2, batch_size=batch_size, checkpoint_every=2)
    with tempfile.TemporaryDirectory() as folder:
        batches = InMemoryBatches(device="cpu", frames=frames, embeddings=embeddings, batch_size=batch_size)
        result = train_gan(config, batches, Path(folder), judge=judge)
        last = result.history[-1]  # the first epoch warms up allocators
        generator = load_generator(result.final_checkpoint, dim)

        # Floor: the generator's forward pass over the test sounds, nothing else.
        x = torch.from_numpy(test_embeddings)
        started = time.perf_counter()
        with torch.no_grad():
            for start in range(0, test, 512):
                generator(x[start : start + 512])
        floor = time.perf_counter() - started

        # Naive: write the epoch's checkpoint, read it back, score it as the checkpoint path does.
        state = {
            "generator": generator.state_dict(),
            "discriminator": {},
            "config": {"width": width, "generator": "dense"},
        }
        started = time.perf_counter()
        save_atomic(state, Path(folder) / "epoch.pt")
        loaded = load_generator(Path(folder) / "epoch.pt", dim)
        score_translations(loaded, test_embeddings, np.array(names), judges, samples=1, seed=0)
        naive = time.perf_counter() - started
    return {
        "width": width,
        "train": train,
        "test": test,
        "epoch_s": last["seconds"],
        "judge_s": last["judge_seconds"],
        "naive_s": naive,
        "floor_s": floor,
    }


def best_of(code: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-train", type=int, default=400, help="the demo profile's 80 a class x 5")
    parser.add_argument("--full-width-train", type=int, default=128)
    args = parser.parse_args()

    import torch

    print(
        f"Informativity at every epoch (CPU, {torch.get_num_threads()} torch threads, dim 512)\n", flush=True
    )
    rows = [
        judging_case(0.0625, args.demo_train, batch_size=16),  # the demo's width and batch
        judging_case(1.0, args.full_width_train, batch_size=64),  # the paper's
    ]
    print(
        "| width | train / test sounds | epoch (s) | judging (s) | share of the epoch | naive: checkpoint "
        "file + score (s) | judging / floor |\n|---:|---:|---:|---:|---:|---:|---:|"
    )
    for row in rows:
        share = row["judge_s"] / (row["epoch_s"] + row["judge_s"])
        print(
            f"| {row['width']} | {row['train']} / {row['test']} | {row['epoch_s']:.2f} | {row['judge_s']:.3f} "
            f"| {100 * share:.1f} % | {row['naive_s']:.3f} ({row['naive_s'] / row['judge_s']:.1f}x judging) "
            f"| {row['judge_s'] / row['floor_s']:.2f}x |",
            flush=True,
        )

    print("\nLoading the Dagster definitions (best of 5, fresh interpreter each)\n", flush=True)
    dagster_s = best_of("import dagster")
    definitions_s = best_of("import pipelines.definitions")
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, pipelines.definitions; print([m for m in {HEAVY!r} if m in sys.modules])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print("| what | seconds | ratio |\n|---|---:|---:|")
    print(f"| floor: `import dagster` | {dagster_s:.3f} | 1 |")
    print(
        f"| `import pipelines.definitions` | {definitions_s:.3f} | {definitions_s / dagster_s:.2f}x (target 1.25x) |"
    )
    print(f"\nheavy libraries imported by the load: {probe}")


if __name__ == "__main__":
    main()
