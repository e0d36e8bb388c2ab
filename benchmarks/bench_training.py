"""Training throughput on the CPU: autoencoder and GAN steps at the demo width and at full width.

For each (network, width) at dim 512, in its own process (so peak memory is its own): samples/s of a
training epoch, the share of the epoch spent producing batches (the in-memory loader plus scaling to
network inputs), and the process's peak resident memory. Exits 1 if a target below is missed.

    python benchmarks/bench_training.py [--full-width-samples 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from targets import Checks

CASES = [("autoencoder", 0.125), ("gan", 0.125), ("autoencoder", 1.0), ("gan", 1.0)]
# Target: producing the batches takes under 5 % of a training epoch, so training is bound by the networks,
# not by the data. Measured on a 2-core AMD EPYC: 0.02-0.39 % idle (README), 0.08-1.7 % with other work
# running (the demo-width GAN is the tightest).
LOADING_SHARE_MAX_PCT = 5.0
STATS = {"min": -14.0, "max": 6.0}


def run_case(kind: str, width: float, samples: int, epochs: int) -> dict:
    import torch

    from s2i_models.loaders import InMemoryBatches, image_batch, spectrogram_batch

    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (samples, 96, 96, 3), dtype=torch.uint8, generator=generator)
    mels = (torch.randn(samples, 100, 128, generator=generator) * 3 - 4).half()
    embeddings = torch.rand(samples, 512, generator=generator) * 2 - 1
    with tempfile.TemporaryDirectory() as folder:
        if kind == "autoencoder":
            from s2i_models.train.autoencoder import AutoencoderConfig, train_autoencoder

            batches = InMemoryBatches(device="cpu", mels=mels, batch_size=64, seed=0)
            config = AutoencoderConfig(dim=512, width=width, epochs=epochs, checkpoint_every=epochs)
            result = train_autoencoder(config, batches, None, STATS, Path(folder), resume=False)
        else:
            from s2i_models.train.gan import GanConfig, train_gan

            batches = InMemoryBatches(
                device="cpu", frames=frames, embeddings=embeddings, batch_size=64, seed=0
            )
            # discriminator_every=1: every epoch has D and G updates, the heavier (and typical) step.
            config = GanConfig(
                dim=512, width=width, epochs=epochs, discriminator_every=1, checkpoint_every=epochs
            )
            result = train_gan(config, batches, Path(folder), resume=False)
    last = result.history[-1]

    # The loader's share: produce every batch of an epoch and turn it into network inputs, without training.
    started = time.perf_counter()
    for batch in batches:
        if "mels" in batch:
            spectrogram_batch(batch["mels"], STATS)
        if "frames" in batch:
            image_batch(batch["frames"])
    loading = time.perf_counter() - started
    return {
        "network": kind,
        "width": width,
        "samples": samples,
        "samples_per_s": round(last["samples_per_second"], 1),
        "epoch_s": round(last["seconds"], 2),
        "loading_share_pct": round(100 * loading / last["seconds"], 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-width-samples", type=int, default=512)
    parser.add_argument("--full-width-samples", type=int, default=128)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, width = args.case.split(":")
        samples = args.full_width_samples if float(width) == 1.0 else args.demo_width_samples
        # Two epochs: the second is measured, the first warms up allocators and kernels.
        print(json.dumps(run_case(kind, float(width), samples, epochs=2)))
        return 0

    import torch

    print(f"CPU training benchmark: dim 512, batch 64, {torch.get_num_threads()} torch threads\n", flush=True)
    rows = []
    for kind, width in CASES:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                f"{kind}:{width}",
                "--demo-width-samples",
                str(args.demo_width_samples),
                "--full-width-samples",
                str(args.full_width_samples),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{kind:<12} width {width:<6} {row['samples_per_s']:>8} samples/s  epoch {row['epoch_s']:>7} s  "
            f"loading {row['loading_share_pct']:>6} %  peak {row['peak_rss_mb']:>6} MB",
            flush=True,
        )
    print("\n| network | width | samples/s | data loading share | peak memory |\n|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['network']} | {row['width']} | {row['samples_per_s']} | {row['loading_share_pct']} % "
            f"| {row['peak_rss_mb']} MB |"
        )

    checks = Checks("bench_training")
    for row in rows:
        checks.at_most(
            f"{row['network']} width {row['width']}: loading share of an epoch",
            row["loading_share_pct"],
            LOADING_SHARE_MAX_PCT,
            unit="%",
        )
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
