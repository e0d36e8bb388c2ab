"""GPU benchmark: time to score one GAN checkpoint (informativity_{dim}) at the paper's sizes.

One checkpoint = translate the 6,825 test sounds (1365 x 5) with the full-width dense generator (MC dropout
on) and classify each image with its class's full-width informativity classifier. The paper's 4000 epochs
checkpointed every 50 give 80 checkpoints per dim; the projection covers all five dims.

    python benchmarks/gpu_evaluation.py [--sounds 6825] [--dim 512]
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sounds", type=int, default=6825)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    import numpy as np
    import torch

    from s2i_models import DenseGenerator
    from s2i_models.informativity import InformativityClassifier
    from s2i_models.train.classifier import classify
    from s2i_models.translate import generate

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu, or on a GPU machine")
    torch.manual_seed(0)
    generator = DenseGenerator(args.dim, mc_dropout=True).to(args.device).eval()
    classifier = InformativityClassifier().to(args.device).eval()
    embeddings = np.random.default_rng(0).random((args.sounds, args.dim), dtype=np.float32) * 2 - 1
    rows = []
    for attempt in range(3):  # the first includes CUDA start-up and kernel selection
        if args.device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        images = generate(generator, embeddings, samples=1, seed=0, device=args.device)[:, 0]
        generated = time.perf_counter() - started
        informative = classify(classifier, images, args.device)
        total = time.perf_counter() - started
        rows.append({"attempt": attempt, "generate_s": round(generated, 3), "total_s": round(total, 3)})
        print(json.dumps(rows[-1]), flush=True)
    best = min(r["total_s"] for r in rows[1:])
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"\n| {name} | dim {args.dim} | {args.sounds} test sounds | {best:.2f} s a checkpoint | "
        f"{args.sounds / best:,.0f} images/s | 80 checkpoints x 5 dims: {best * 400 / 60:.1f} min |"
    )
    assert informative.shape == (args.sounds,)


if __name__ == "__main__":
    main()
