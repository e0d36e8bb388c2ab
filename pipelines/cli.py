"""The `s2i` command: what is not an asset run.

s2i profile show [--profile NAME_OR_PATH]    the validated settings in force (S2I_PROFILE by default)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _profile_show(args: argparse.Namespace) -> int:
    import yaml

    from pipelines.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        print(error, file=sys.stderr)
        return 2
    data = profile.model_dump(mode="json")
    print(f"# profile {profile.name} from {data.pop('path')}")
    data.pop("name")
    print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0


class CliError(Exception):
    """An error the user can act on: printed without a traceback."""


def _data_dir(value: str | None) -> Path:
    import os

    from pipelines.profile import DEFAULT_DATA_DIR

    return Path(value or os.environ.get("S2I_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def _trained(data_dir: Path, key: str, dim: int) -> tuple[Path, dict]:
    from pipelines.data.artifact_manifest import read_manifest

    manifest = read_manifest(data_dir / key)
    if manifest is None:
        raise CliError(
            f"no trained `{key}` under {data_dir / key}. Train it first: "
            f"dagster asset materialize -m pipelines --select '*gan_{dim}' (with S2I_DATA_DIR={data_dir})"
        )
    return data_dir / key, manifest.data


def _translate(args: argparse.Namespace) -> int:
    import json

    import torch

    from pipelines.data.previews import image_grid_png
    from pipelines.media.extract import ClipError, extract_sound
    from pipelines.media.logmel import log_mel
    from s2i_models.loaders import spectrogram_batch
    from s2i_models.translate import load_autoencoder, load_generator, translate

    data_dir = _data_dir(args.data_dir)
    stats_dir, _ = _trained(data_dir, "spectrogram_stats", args.dim)
    ae_dir, ae = _trained(data_dir, f"autoencoder_{args.dim}", args.dim)
    gan_dir, gan = _trained(data_dir, f"gan_{args.dim}", args.dim)
    try:
        sound = extract_sound(args.sound)
    except ClipError as error:
        lines = [line for line in error.detail.splitlines() if not line.startswith("ffmpeg exit status")]
        raise CliError(f"{args.sound}: {error.reason}: {lines[0] if lines else error.detail}") from None
    seconds = min(len(sound), args.max_seconds)
    mels = log_mel(sound[:seconds])  # (S, 100, 128)
    stats = json.loads((stats_dir / "stats.json").read_text())
    spectrograms = spectrogram_batch(torch.from_numpy(mels), stats)
    checkpoint = gan_dir / gan["checkpoints"][-1]
    encoder = load_autoencoder(ae_dir / ae["checkpoint"], args.dim)
    generator = load_generator(checkpoint, args.dim)
    images = translate(encoder, generator, spectrograms, samples=args.n, seed=args.seed)  # (S, n, 96, 96, 3)
    rows = [list(images[second]) for second in range(seconds)]
    titles = [f"{second}-{second + 1} s" for second in range(seconds)]
    png = image_grid_png(rows, titles, [f"image {i + 1}" for i in range(args.n)])
    output = Path(args.output or f"{Path(args.sound).stem}_s2i_{args.dim}.png")
    output.write_bytes(png)
    skipped = f" (first {seconds} of {len(sound)} s)" if seconds < len(sound) else ""
    print(f"{output}: {seconds} s{skipped} x {args.n} images, generator {checkpoint.name} of gan_{args.dim}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="s2i", description="Sound-to-Imagination tools")
    commands = parser.add_subparsers(dest="command", required=True)
    profile = commands.add_parser("profile", help="profiles").add_subparsers(dest="action", required=True)
    show = profile.add_parser("show", help="print the validated profile in force")
    show.add_argument("--profile", help="demo, vegas or a YAML path (default: S2I_PROFILE, else demo)")
    show.set_defaults(run=_profile_show)

    translate = commands.add_parser("translate", help="imagine pictures for a sound with a trained generator")
    translate.add_argument("sound", help="an audio or video file ffmpeg can read")
    translate.add_argument("--dim", type=int, default=512, choices=(128, 256, 512, 1024, 2048))
    translate.add_argument("-n", type=int, default=8, help="images per second of sound (MC dropout samples)")
    translate.add_argument("-o", "--output", help="grid PNG to write (default: <sound>_s2i_<dim>.png)")
    translate.add_argument("--seed", type=int, default=0)
    translate.add_argument("--max-seconds", type=int, default=10, help="translate at most this many seconds")
    translate.add_argument("--data-dir", help="artifacts folder (default: S2I_DATA_DIR, else data/)")
    translate.set_defaults(run=_translate)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as error:
        print(f"s2i {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
