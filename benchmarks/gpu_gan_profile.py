"""GPU diagnosis: where a full-width GAN training step (dim 512) spends its time.

Times an epoch of `--steps` batches at several batch sizes (launch-bound steps cost about the same at any
batch size), then profiles one epoch at batch 64 with torch.profiler: GPU busy time vs wall time, kernel
launches per step, and the top operators by CPU and by GPU time.

    python benchmarks/gpu_gan_profile.py [--steps 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def run_epoch(batch_size: int, steps: int, precision: str = "fp32", profile: bool = False):
    import torch

    from s2i_models.loaders import InMemoryBatches
    from s2i_models.train.gan import GanConfig, train_gan

    samples = batch_size * steps
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (samples, 96, 96, 3), dtype=torch.uint8, generator=g)
    embeddings = torch.rand(samples, 512, generator=g) * 2 - 1
    batches = InMemoryBatches(
        device="cuda", frames=frames, embeddings=embeddings, batch_size=batch_size, seed=0
    )
    config = GanConfig(
        dim=512,
        epochs=2,
        batch_size=batch_size,
        discriminator_every=1,
        checkpoint_every=2,
        precision=precision,
    )
    with tempfile.TemporaryDirectory() as folder:
        if not profile:
            result = train_gan(config, batches, Path(folder), device="cuda", resume=False)
            return result.history[-1]["seconds"]
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            started = time.perf_counter()
            train_gan(config, batches, Path(folder), device="cuda", resume=False)
            torch.cuda.synchronize()
            wall = time.perf_counter() - started
        return prof, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    for batch_size in (64, 256):
        seconds = run_epoch(batch_size, args.steps)
        print(
            f"batch {batch_size}: {1000 * seconds / args.steps:.1f} ms a step, {batch_size * args.steps / seconds:,.0f} samples/s",
            flush=True,
        )
    prof, wall = run_epoch(64, args.steps, profile=True)
    events = prof.key_averages()
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    gpu_busy = (
        sum(e.time_range.elapsed_us() for e in kernels) / 1e6
    )  # us -> s (2 epochs incl. checkpoint saves)
    print(
        f"profiled 2 epochs x {args.steps} steps: wall {wall:.2f} s, GPU kernels busy {gpu_busy:.2f} s "
        f"({100 * gpu_busy / wall:.0f} %), {len(kernels) / (2 * args.steps):.0f} kernels a step"
    )
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    print(events.table(sort_by="self_device_time_total", row_limit=15))


if __name__ == "__main__":
    main()
