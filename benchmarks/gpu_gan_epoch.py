"""GPU benchmark: epoch time of the full-width GAN (dim 512) on 48,945 samples held on the GPU.

48,945 = the paper's training split (9789 x 5). Synthetic uint8 frames and embeddings live on the device
as the training loop holds them; one epoch is timed in fp32 and in bf16 after a warm-up, and the time
for the paper's 4000 epochs is projected (target: under 6 hours on one H200-class GPU).

    python benchmarks/gpu_gan_epoch.py [--samples 48945] [--steps N]   # --steps: time N batches, extrapolate
"""

from __future__ import annotations

import argparse
import json
import time

SAMPLES = 48_945


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument(
        "--steps", type=int, default=0, help="time this many batches and extrapolate (0: one epoch)"
    )
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile G and D (gan.compile)")
    args = parser.parse_args()

    import torch

    from s2i_models.loaders import InMemoryBatches
    from s2i_models.train.gan import GanConfig, train_gan

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU")
    device = "cuda"
    name = torch.cuda.get_device_name()
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (args.samples, 96, 96, 3), dtype=torch.uint8, generator=generator)
    embeddings = torch.rand(args.samples, 512, generator=generator) * 2 - 1
    results = []
    for precision in args.precisions.split(","):
        samples = args.samples if not args.steps else args.steps * 64
        batches = InMemoryBatches(
            device=device, frames=frames[:samples], embeddings=embeddings[:samples], batch_size=64, seed=0
        )
        # Two epochs, D updated in both (the heavier epoch kind); the second is the measurement.
        config = GanConfig(
            dim=512,
            epochs=2,
            discriminator_every=1,
            checkpoint_every=2,
            precision=precision,
            compile=args.compile,
        )
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            result = train_gan(config, batches, Path(folder), device=device, resume=False)
            total = time.perf_counter() - started
        epoch_s = result.history[-1]["seconds"] * args.samples / samples
        row = {
            "gpu": name,
            "precision": precision + (" compiled" if args.compile else ""),
            "epoch_s": round(epoch_s, 2),
            "samples_per_s": round(args.samples / epoch_s),
            "hours_for_4000_epochs": round(epoch_s * 4000 / 3600, 2),
            "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
            "wall_s": round(total, 1),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    print("\n| GPU | precision | epoch (48,945 samples) | samples/s | 4000 epochs | peak memory |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['gpu']} | {r['precision']} | {r['epoch_s']} s | {r['samples_per_s']} | "
            f"{r['hours_for_4000_epochs']} h | {r['peak_gpu_memory_gb']} GB |"
        )


if __name__ == "__main__":
    main()
