"""The `s2i` command: what is not an asset run.

s2i profile show [--profile NAME_OR_PATH]
    the validated settings in force (S2I_PROFILE by default)
s2i translate SOUND [--dim 512] [-n 8] [-o OUT.png] [--data-dir DIR | --from RELEASE | --authors-models DIR]
    imagine pictures for a sound with a trained generator: from the data folder, from a release folder
    (`s2i export`; every checksum verified first), or with the paper's own networks (the authors' released
    autoencoder and generator, dim 512)
s2i export --dim 512 -o DIR [--data-dir DIR] [--profile NAME_OR_PATH] [--force]
s2i export --authors-models DIR [--dim 512] -o DIR [--force]
    write a release folder of one trained dim for others: autoencoder, generator and discriminator with the
    optimizer states, the scaling statistics, the classifiers, labels and used_videos.csv when they exist,
    the profile in force, and release.json with every file's sha256 and size; or the same from the
    authors' released networks
s2i label [--data-dir DIR] [--host 127.0.0.1] [--port 8765] [--labeller NAME] [--profile NAME_OR_PATH]
    a local web page where a person labels the informativity candidates as informative or not of
    their sound's class (paper §5.3); answers go to <data dir>/informativity_answers/answers.json
s2i authors check --data S2I_DATA --models TRAINED_MODELS [--dim 512] [--split test] [--limit 2048]
    recompute the authors' published embeddings from their spectrograms with their autoencoder as s2i
    loads it, and compare (a check that the loaders and the 8-bit scaling are the authors')
s2i tensorboard [--data-dir DIR] [--host 127.0.0.1] [--port 6006]
    TensorBoard over every training run's event files in the data folder: losses per epoch, per-epoch
    informativity, image grids at checkpoints, live while training runs
s2i report [--data-dir DIR]
    where the report is, and its summary table (informativity per dim and class vs the baseline)
"""

from __future__ import annotations

import argparse
import os
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
    from pipelines.media.logmel import authors_spectrogram, log_mel
    from s2i_models.loaders import spectrogram_batch
    from s2i_models.translate import load_autoencoder, load_generator, translate

    if args.release:
        encoder, generator, stats, described, dim = _release_networks(Path(args.release), args.dim)
    elif args.authors_models:
        dim = args.dim or 512
        encoder, generator, described = _authors_networks(Path(args.authors_models), dim)
    else:
        dim = args.dim or 512
        data_dir = _data_dir(args.data_dir)
        stats_dir, _ = _trained(data_dir, "spectrogram_stats", dim)
        ae_dir, ae = _trained(data_dir, f"autoencoder_{dim}", dim)
        gan_dir, gan = _trained(data_dir, f"gan_{dim}", dim)
        stats = json.loads((stats_dir / "stats.json").read_text())
        checkpoint = gan_dir / gan["checkpoints"][-1]
        encoder = load_autoencoder(ae_dir / ae["checkpoint"], dim)
        generator = load_generator(checkpoint, dim)
        described = f"generator {checkpoint.name} of gan_{dim}"
    try:
        sound = extract_sound(args.sound)
    except ClipError as error:
        lines = [line for line in error.detail.splitlines() if not line.startswith("ffmpeg exit status")]
        raise CliError(f"{args.sound}: {error.reason}: {lines[0] if lines else error.detail}") from None
    seconds = min(len(sound), args.max_seconds)
    mels = log_mel(sound[:seconds])  # (S, 100, 128)
    if args.authors_models:
        mels, stats = authors_spectrogram(mels), {"min": 0.0, "max": 255.0}
    elif stats.get("method") == "uint8":  # networks trained on the authors' 8-bit spectrograms (s2i_data)
        mels = authors_spectrogram(mels)
    spectrograms = spectrogram_batch(torch.from_numpy(mels), stats)
    images = translate(encoder, generator, spectrograms, samples=args.n, seed=args.seed)  # (S, n, 96, 96, 3)
    rows = [list(images[second]) for second in range(seconds)]
    titles = [f"{second}-{second + 1} s" for second in range(seconds)]
    png = image_grid_png(rows, titles, [f"image {i + 1}" for i in range(args.n)])
    output = Path(args.output or f"{Path(args.sound).stem}_s2i_{dim}.png")
    output.write_bytes(png)
    skipped = f" (first {seconds} of {len(sound)} s)" if seconds < len(sound) else ""
    print(f"{output}: {seconds} s{skipped} x {args.n} images, {described}")
    return 0


def _release_networks(folder: Path, dim: int | None):
    """A release folder's encoder, generator and scaling, after verifying every file's checksum."""
    import json

    from pipelines.data.release import AUTOENCODER, GAN, STATS, ReleaseError, read_release
    from s2i_models.translate import load_autoencoder, load_generator

    try:
        release = read_release(folder)
        if dim is not None and dim != release.dim:
            raise CliError(f"the release {folder} holds dim {release.dim} networks, not {dim}: drop --dim")
        encoder = load_autoencoder(release.path(AUTOENCODER), release.dim)
        generator = load_generator(release.path(GAN), release.dim)
        stats = json.loads(release.path(STATS).read_text())
    except ReleaseError as error:
        raise CliError(str(error)) from None
    epoch = release.epochs.get("gan", "?")
    return encoder, generator, stats, f"generator of epoch {epoch} from the release {folder}", release.dim


def _export(args: argparse.Namespace) -> int:
    from pipelines.data.release import ReleaseError, export_authors_release, export_data_release
    from pipelines.profile import ProfileError, load_profile

    try:
        if args.authors_models:
            release = export_authors_release(
                Path(args.authors_models), args.dim, Path(args.output), force=args.force
            )
        else:
            profile = load_profile(args.profile)
            release = export_data_release(
                _data_dir(args.data_dir), args.dim, Path(args.output), profile, force=args.force
            )
    except (ReleaseError, ProfileError) as error:
        raise CliError(str(error)) from None
    total = sum(entry["bytes"] for entry in release.files.values())
    epochs = release.epochs
    print(
        f"{release.folder}: release of dim {release.dim} (GAN epoch {epochs.get('gan')}, autoencoder epoch "
        f"{epochs.get('autoencoder')}), {len(release.files)} files, {total / 1e6:.1f} MB, each in release.json "
        "with its sha256 and size"
    )
    for name, entry in release.files.items():
        print(f"  {name}: {entry['what']}")
    for note in release.data.get("notes", []):
        print(f"  note: {note}")
    return 0


def _authors_networks(models_dir: Path, dim: int):
    """The authors' autoencoder and generator of `dim` (they released a generator for 512 only)."""
    from s2i_models.authors import (
        AuthorsModelError,
        authors_file,
        load_authors_autoencoder,
        load_authors_generator,
    )

    try:
        generator_path = authors_file(models_dir, "generator", dim)
        encoder = load_authors_autoencoder(authors_file(models_dir, "autoencoder", dim))
        generator = load_authors_generator(generator_path)
    except AuthorsModelError as error:
        raise CliError(str(error)) from None
    return (
        encoder,
        generator,
        f"the authors' {generator_path.name} (spectrogram scale approximate: see README)",
    )


def _label(args: argparse.Namespace) -> int:
    from pipelines.data.answers import AnswersFileError
    from pipelines.labelling import LabellingError, make_server, serve
    from pipelines.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        raise CliError(str(error)) from None
    try:
        server = make_server(
            _data_dir(args.data_dir),
            class_labels=dict(profile.classes),
            target_per_class=profile.evaluation.labels_per_class,
            labeller=args.labeller,
            host=args.host,
            port=args.port,
        )
        serve(server)
    except (LabellingError, AnswersFileError) as error:
        raise CliError(str(error)) from None
    return 0


def _authors_check(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from pipelines.data.s2i_data import S2IDataError, compare_embeddings
    from s2i_models.authors import AuthorsModelError, authors_file, load_authors_autoencoder
    from s2i_models.loaders import spectrogram_batch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = load_authors_autoencoder(authors_file(Path(args.models), "autoencoder", args.dim), device)

        def encode(mels):
            out = []
            with torch.no_grad():
                for start in range(0, len(mels), 256):
                    batch = torch.from_numpy(mels[start : start + 256]).to(device)
                    out.append(
                        model.encode(spectrogram_batch(batch, {"min": 0.0, "max": 255.0})).cpu().numpy()
                    )
            return np.concatenate(out)

        result = compare_embeddings(Path(args.data), encode, args.dim, args.split, args.limit)
    except (AuthorsModelError, S2IDataError) as error:
        raise CliError(str(error)) from None
    verdict = "match" if result["max_abs_difference"] <= args.tolerance else "DIFFER"
    print(
        f"{result['segments_compared']} {args.split} segments, dim {args.dim}: the authors' published embeddings "
        f"and this encoder's {verdict} (max |difference| {result['max_abs_difference']:.2e}, mean "
        f"{result['mean_abs_difference']:.2e}, tolerance {args.tolerance:g}; on {device})"
    )
    return 0 if verdict == "match" else 1


def _tensorboard(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    data_dir = _data_dir(args.data_dir)
    if not data_dir.is_dir():
        raise CliError(
            f"no data folder at {data_dir}: run the pipeline first (make demo), or pass --data-dir"
        )
    runs = sorted({p.parent for p in data_dir.rglob("events.out.tfevents.*")})
    if not runs:
        raise CliError(
            f"no TensorBoard event files under {data_dir} yet: they appear as soon as a training run starts"
        )
    tensorboard = shutil.which("tensorboard", path=str(Path(sys.executable).parent)) or shutil.which(
        "tensorboard"
    )
    if tensorboard is None:
        raise CliError("the tensorboard command is not installed: reinstall s2i (make setup)")
    print(
        f"TensorBoard on http://{args.host}:{args.port}/ over {len(runs)} runs in {data_dir} (Ctrl-C stops it)"
    )
    command = [tensorboard, "--logdir", str(data_dir), "--host", args.host, "--port", str(args.port)]
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from pipelines.data.report import summary_table_markdown

    folder = _data_dir(args.data_dir) / "s2i_report"
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except FileNotFoundError:
        raise CliError(
            f"no report under {folder}: build it with "
            "dagster asset materialize -m pipelines --select s2i_report (or make demo)"
        ) from None
    except ValueError as error:  # a damaged summary.json
        raise CliError(
            f"{folder / 'summary.json'} cannot be read ({error}): rebuild it with "
            "dagster asset materialize -m pipelines --select s2i_report"
        ) from None
    print(f"Report: {folder / 'index.html'}")
    print(summary_table_markdown(summary, summary.get("classes", {})))
    for note in summary.get("notes", []):
        print(f"- {note}")
    best = summary.get("best_dim")
    row = summary.get("dims", {}).get(str(best), {})
    average = (row.get("window_average") or {}).get("average")
    baseline = (row.get("baseline") or {}).get("average")
    window = summary.get("window") or ["?", "?"]
    if average is not None:
        untrained = "unknown" if baseline is None else f"{100 * baseline:.1f} %"
        print(
            f"Best dim {best}: informativity {100 * average:.1f} % on average over epochs "
            f"{window[0]}-{window[1]}; untrained generator {untrained}"
        )
    elif best is not None:
        print(f"No evaluated epoch of any dim falls in the window {window[0]}-{window[1]} yet.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="s2i", description="Sound-to-Imagination tools")
    commands = parser.add_subparsers(dest="command", required=True)
    profile = commands.add_parser("profile", help="profiles").add_subparsers(dest="action", required=True)
    show = profile.add_parser("show", help="print the validated profile in force")
    show.add_argument("--profile", help="demo, vegas, paper or a YAML path (default: S2I_PROFILE, else demo)")
    show.set_defaults(run=_profile_show)

    translate = commands.add_parser("translate", help="imagine pictures for a sound with a trained generator")
    translate.add_argument("sound", help="an audio or video file ffmpeg can read")
    translate.add_argument(
        "--dim",
        type=int,
        choices=(128, 256, 512, 1024, 2048),
        help="embedding size (default 512; a release's own)",
    )
    translate.add_argument("-n", type=int, default=8, help="images per second of sound (MC dropout samples)")
    translate.add_argument("-o", "--output", help="grid PNG to write (default: <sound>_s2i_<dim>.png)")
    translate.add_argument("--seed", type=int, default=0)
    translate.add_argument("--max-seconds", type=int, default=10, help="translate at most this many seconds")
    networks = translate.add_mutually_exclusive_group()
    networks.add_argument("--data-dir", help="artifacts folder (default: S2I_DATA_DIR, else data/)")
    networks.add_argument(
        "--from",
        dest="release",
        metavar="RELEASE",
        help="a release folder (s2i export); every file's checksum is verified first",
    )
    networks.add_argument(
        "--authors-models",
        metavar="DIR",
        help="use the paper's own networks: the trained_models/ folder of a clone of leofanzeres/s2i",
    )
    translate.set_defaults(run=_translate)

    export = commands.add_parser("export", help="write a release folder of one trained dim, for others")
    export.add_argument("--dim", type=int, default=512, choices=(128, 256, 512, 1024, 2048))
    export.add_argument("-o", "--output", required=True, help="the release folder to write (must not exist)")
    export.add_argument("--force", action="store_true", help="replace a release already at -o")
    sources = export.add_mutually_exclusive_group()
    sources.add_argument("--data-dir", help="artifacts folder (default: S2I_DATA_DIR, else data/)")
    sources.add_argument(
        "--authors-models",
        metavar="DIR",
        help="release the paper's own networks: the trained_models/ folder of a clone of leofanzeres/s2i",
    )
    export.add_argument(
        "--profile", help="the profile the networks were trained with (default: S2I_PROFILE, else demo)"
    )
    export.set_defaults(run=_export)

    label = commands.add_parser("label", help="label candidate images as informative or not, in a browser")
    label.add_argument("--data-dir", help="artifacts folder (default: S2I_DATA_DIR, else data/)")
    label.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    label.add_argument("--port", type=int, default=8765, help="port to listen on, 0 for any free one")
    label.add_argument(
        "--labeller",
        default=os.environ.get("USER") or "anonymous",
        help="name stored with each answer (default: $USER, else anonymous)",
    )
    label.add_argument("--profile", help="class names from this profile (default: S2I_PROFILE, else demo)")
    label.set_defaults(run=_label)

    authors = commands.add_parser("authors", help="the authors' released data and networks").add_subparsers(
        dest="action", required=True
    )
    check = authors.add_parser("check", help="recompute their published embeddings and compare")
    check.add_argument("--data", required=True, help="a clone of leofanzeres/s2i_data (git lfs pull)")
    check.add_argument("--models", required=True, help="the trained_models/ folder of leofanzeres/s2i")
    check.add_argument("--dim", type=int, default=512, choices=(128, 256, 512, 1024, 2048))
    check.add_argument("--split", default="test", choices=("train", "val", "test"))
    check.add_argument("--limit", type=int, default=2048, help="compare at most this many segments")
    check.add_argument("--tolerance", type=float, default=1e-3, help="largest absolute difference allowed")
    check.set_defaults(run=_authors_check)

    board = commands.add_parser("tensorboard", help="live training curves and image grids in TensorBoard")
    board.add_argument("--data-dir", help="artifacts folder (default: S2I_DATA_DIR, else data/)")
    board.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    board.add_argument("--port", type=int, default=6006)
    board.set_defaults(run=_tensorboard)

    report = commands.add_parser("report", help="where the report is, and its summary table")
    report.add_argument("--data-dir", help="artifacts folder (default: S2I_DATA_DIR, else data/)")
    report.set_defaults(run=_report)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as error:
        print(f"s2i {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
