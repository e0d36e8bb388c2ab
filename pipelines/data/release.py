"""Release folders: one trained embedding size packed for other people, every file checksummed.

`s2i export` writes one from a data folder (`export_data_release`) or from the authors' released networks
(`export_authors_release`); `s2i translate --from` and the profile's `gan.init_from` (fine-tuning) read it
back (`read_release`), verifying every checksum first. A folder holds:

  release.json            what the release is: s2i version, dim, epochs, the networks' sizes, the profile in
                          force (no secrets), and for every other file what it is, its sha256 and its size
  autoencoder.pt          the `autoencoder_{dim}` checkpoint {"epoch", "model", "config", "stats"}
  gan.pt                  the GAN's epoch checkpoint {"epoch", "generator", "discriminator", "config"}
  gan_optimizers.pt       the optimizers' states at that epoch {"epoch", "optimizer_g", "optimizer_d", "config"}
  spectrogram_stats.json  how a log-mel is scaled for the autoencoder (the `spectrogram_stats` asset's file)
  gan_history.parquet     the GAN's per-epoch losses (and informativity, when judges ran in training)
  classifiers/<class>.pt  the informativity classifiers, with classifiers/accuracy.parquet, when they exist
  labels.parquet          the informativity labels, when they exist
  used_videos.csv         the videos the splits used, when the data folder has it
  profile.yaml            the profile in force, as YAML

The checkpoints are byte copies of the data folder's files, so a release translates exactly as the data
folder does. The folder is built under a temporary name beside the destination and renamed into place
once complete: a reader never sees half a release. Plain Python, no Dagster; torch is imported inside
the functions that use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pipelines.data.artifact_manifest import Manifest, read_manifest
from pipelines.data.files import atomic_open, sha256_file, write_json_atomic
from pipelines.data.steps import StepError

if TYPE_CHECKING:
    from pipelines.profile import Profile
    from s2i_models.train.gan import GanConfig

Log = Callable[[str], object]

RELEASE_JSON = "release.json"
FORMAT = "s2i-release"
FORMAT_VERSION = 1

AUTOENCODER = "autoencoder.pt"
GAN = "gan.pt"
GAN_OPTIMIZERS = "gan_optimizers.pt"
STATS = "spectrogram_stats.json"
GAN_HISTORY = "gan_history.parquet"
CLASSIFIERS = "classifiers"
LABELS = "labels.parquet"
USED_VIDEOS = "used_videos.csv"
PROFILE = "profile.yaml"


class ReleaseError(StepError):
    """A release that cannot be made or used; the message names the file and says what to do."""


# ---- reading and verifying -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """A release folder whose files matched their checksums when it was read."""

    folder: Path
    data: dict[str, Any]  # release.json

    @property
    def dim(self) -> int:
        return int(self.data["dim"])

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.data["files"]

    @property
    def epochs(self) -> dict[str, int]:
        return self.data.get("epochs", {})

    def path(self, name: str) -> Path:
        """The path of a file the release lists; an error naming it when the release has none."""
        if name not in self.files:
            raise ReleaseError(
                f"release {self.folder} has no {name} (its release.json lists {', '.join(sorted(self.files))}): "
                "export the release again with a current s2i (s2i export)."
            )
        return self.folder / name


def _well_formed(name: str, entry: Any) -> bool:
    """A listed file lies inside the release (a release.json from elsewhere must not point outside it) and
    has a size and a sha256."""
    path = PurePosixPath(name)
    inside = bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name
    return (
        inside
        and isinstance(entry, dict)
        and isinstance(entry.get("bytes"), int)
        and isinstance(entry.get("sha256"), str)
    )


def read_release(folder: Path | str, verify: bool = True) -> Release:
    """The release in `folder`; with `verify`, every listed file's size and sha256 are checked first, and a
    missing, changed or truncated file is refused with an error that names each one."""
    folder = Path(folder).expanduser()
    how = f"make one with: s2i export --dim 512 -o {folder}"
    if not folder.is_dir():
        raise ReleaseError(f"{folder} is not a folder: give the folder `s2i export` wrote ({how})")
    path = folder / RELEASE_JSON
    if not path.is_file():
        raise ReleaseError(f"{folder} is not an s2i release: it has no {RELEASE_JSON} ({how})")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ReleaseError(
            f"{path} cannot be read ({error}): the file is damaged; copy or download the release again"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("files"), dict)
        or not isinstance(data.get("dim"), int)
    ):
        raise ReleaseError(
            f"{path} is not the {RELEASE_JSON} of an s2i release (it needs format: {FORMAT}, dim and files)"
        )
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise ReleaseError(
            f"{path} is release format {data['format_version']}; this s2i reads format {FORMAT_VERSION} and "
            "older: update s2i"
        )
    unsafe = [name for name, entry in data["files"].items() if not _well_formed(name, entry)]
    if unsafe:
        raise ReleaseError(
            f"{path} lists files outside the release folder or without size and sha256 ({', '.join(unsafe)}): "
            "refused; copy or download the release again"
        )
    if verify:
        problems = [
            p for name, entry in sorted(data["files"].items()) if (p := _file_problem(folder, name, entry))
        ]
        if problems:
            raise ReleaseError(
                f"release {folder} does not match its {RELEASE_JSON}:\n"
                + "\n".join(f"  - {problem}" for problem in problems)
                + "\nThe files were changed or cut short after export, so s2i does not use them: copy or download "
                "the release again, or export it anew (s2i export)."
            )
    return Release(folder=folder, data=data)


def _file_problem(folder: Path, name: str, entry: dict[str, Any]) -> str | None:
    """What is wrong with one listed file (missing, truncated, changed), or None when it matches."""
    path = folder / name
    if not path.is_file():
        return f"{name}: missing (expected {entry['bytes']:,} bytes, sha256 {entry['sha256']})"
    size = path.stat().st_size
    digest = sha256_file(path)
    if size == entry["bytes"] and digest == entry["sha256"]:
        return None
    if size == entry["bytes"]:
        return f"{name}: changed (same size, {size:,} bytes): sha256 {digest}, expected {entry['sha256']}"
    what = "truncated" if size < entry["bytes"] else "changed"
    return f"{name}: {what}: {size:,} bytes, expected {entry['bytes']:,}; sha256 {digest}, expected {entry['sha256']}"


def release_fingerprint(folder: Path | str) -> str:
    """A release's identity for a GAN's fingerprint: the sha256 of its release.json, which lists every file's
    sha256, so changing any file (or pointing at another release) changes it."""
    path = Path(folder).expanduser() / RELEASE_JSON
    if not path.is_file():
        raise ReleaseError(
            f"gan.init_from: {path.parent} is not an s2i release (no {RELEASE_JSON}): give the folder "
            "`s2i export` wrote, or remove gan.init_from"
        )
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- writing -----------------------------------------------------------------------------------------------------


class _Writer:
    """Files of a release being built in a temporary folder, each with its sha256, size and description."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, dict[str, Any]] = {}

    def _record(self, name: str, what: str, digest: str, size: int) -> None:
        self.files[name] = {"what": what, "sha256": digest, "bytes": size}

    def copy(self, name: str, source: Path, what: str, expected_sha256: str | None, asset: str) -> None:
        """A byte copy of `source`, hashed as it is copied; refused when it no longer matches the checksum the
        manifest of `asset` recorded (`expected_sha256`)."""
        digest, size = hashlib.sha256(), 0
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as reader, atomic_open(target) as writer:
            while block := reader.read(1 << 20):
                digest.update(block)
                writer.write(block)
                size += len(block)
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise ReleaseError(
                f"{source} does not match the sha256 that {asset}/manifest.json recorded ({expected_sha256}): it "
                f"changed after `{asset}` was materialized. Re-materialize it "
                f"(dagster asset materialize -m pipelines --select {asset}), then export again."
            )
        self._record(name, what, digest.hexdigest(), size)

    def save(self, name: str, obj: Any, what: str) -> None:
        """A checkpoint made here (torch.save, atomically)."""
        from s2i_models.checkpoint import save_atomic

        save_atomic(obj, self.folder / name)
        self._file(name, what)

    def write_bytes(self, name: str, data: bytes, what: str) -> None:
        with atomic_open(self.folder / name) as stream:
            stream.write(data)
        self._file(name, what)

    def _file(self, name: str, what: str) -> None:
        path = self.folder / name
        self._record(name, what, sha256_file(path), path.stat().st_size)


@contextmanager
def _building(out: Path, force: bool) -> Iterator[_Writer]:
    """A writer into `.tmp-<name>.<random>` beside `out`, renamed to `out` when the block completes and
    deleted when it fails; with `force`, an existing release at `out` is replaced."""
    out = Path(out).expanduser().absolute()
    _check_destination(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.parent / f".tmp-{out.name}.{secrets.token_hex(4)}"
    temp.mkdir()  # honours the umask, unlike mkdtemp's 0700: a release is meant to be shared
    try:
        yield _Writer(temp)
        _shareable(temp)
        if out.exists():  # only with force, checked above: swap, then drop the old release
            old = out.parent / f".old-{out.name}.{secrets.token_hex(4)}"
            os.rename(out, old)
            os.rename(temp, out)
            shutil.rmtree(old)
        else:
            os.rename(temp, out)
    finally:
        if temp.exists():
            shutil.rmtree(temp)


def _shareable(folder: Path) -> None:
    """Give the files the folder's permissions without execute bits: atomic writes make them owner-only
    (mkstemp), while the folder was made under the user's umask, which is what they chose for sharing."""
    mode = folder.stat().st_mode & 0o777
    for path in folder.rglob("*"):
        path.chmod(mode if path.is_dir() else mode & 0o666)


def _check_destination(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ReleaseError(f"{out} exists and is not a folder: choose another -o")
    if not any(out.iterdir()):  # an empty folder made beforehand: the release takes its place
        return
    if not force:
        raise ReleaseError(
            f"{out} already exists: choose another -o, or add --force to replace the release there"
        )
    if not (out / RELEASE_JSON).is_file():
        raise ReleaseError(
            f"{out} exists and is not a release folder (no {RELEASE_JSON}): --force replaces only a release; "
            "choose another -o"
        )


def _release_data(dim: int, files: dict[str, dict[str, Any]], **fields: Any) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        s2i_version = version("s2i")
    except PackageNotFoundError:
        s2i_version = "unknown"
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "s2i_version": s2i_version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dim": dim,
        **fields,
        "files": dict(sorted(files.items())),
    }


def profile_settings(profile: Profile) -> dict[str, Any]:
    """The profile's settings for a release: no secrets (`source.cookies` is left out), no local file path."""
    data = profile.model_dump(mode="json")
    data.pop("path", None)
    # The model already excludes cookies from dumps; a release is for sharing, so make sure of it here too.
    if isinstance(data.get("source"), dict):
        data["source"].pop("cookies", None)
    return data


def _profile_yaml(settings: dict[str, Any]) -> bytes:
    import yaml

    body = {k: v for k, v in settings.items() if k != "name"}
    header = (
        f"# the profile in force when this release was exported ({settings.get('name')}); usable as `base:`\n"
    )
    return (header + yaml.safe_dump(body, sort_keys=False)).encode()


# ---- from a data folder ----------------------------------------------------------------------------------------


def _manifest(data_dir: Path, key: str, dim: int) -> Manifest:
    manifest = read_manifest(data_dir / key)
    if manifest is None:
        raise ReleaseError(
            f"no materialized `{key}` under {data_dir / key}: train it first: dagster asset materialize -m "
            f"pipelines --select '*gan_{dim}' (with S2I_DATA_DIR={data_dir})"
        )
    return manifest


def _check_chain(data_dir: Path, dim: int, manifests: dict[str, Manifest]) -> None:
    """The autoencoder, embeddings and GAN must be one chain: a GAN trained on another encoder's embeddings
    would imagine nonsense from this encoder's."""
    links = [
        (f"gan_{dim}", f"audio_embeddings_{dim}"),
        (f"audio_embeddings_{dim}", f"autoencoder_{dim}"),
        (f"audio_embeddings_{dim}", "spectrogram_stats"),
        (f"autoencoder_{dim}", "spectrogram_stats"),
    ]
    for child, parent in links:
        used = manifests[child].data.get("inputs", {}).get(parent)
        if used != manifests[parent].fingerprint:
            raise ReleaseError(
                f"{data_dir}: `{child}` was computed from another `{parent}` than the one there now (fingerprint "
                f"{used}, now {manifests[parent].fingerprint}), so the networks do not fit together. Bring the "
                f"chain up to date first: dagster asset materialize -m pipelines --select '*gan_{dim}' "
                f"(with S2I_DATA_DIR={data_dir})"
            )


def _check_profile(profile: Profile, dim: int, manifests: dict[str, Manifest], data_dir: Path) -> list[str]:
    """The profile in force must be the one the networks were trained with (`epochs` aside: a profile may ask
    for more than has run yet); returns notes on the epochs that differ."""
    from pipelines.data.training_steps import autoencoder_config, gan_config

    expected = {f"gan_{dim}": asdict(gan_config(profile, dim))}
    if profile.autoencoder.pretrained == "authors":
        expected[f"autoencoder_{dim}"] = {"dim": dim, "pretrained": "authors"}
    else:
        expected[f"autoencoder_{dim}"] = asdict(autoencoder_config(profile, dim))
    differing, notes = [], []
    for key, wanted in expected.items():
        trained = manifests[key].data.get("settings", {})
        for name in sorted(set(wanted) | set(trained)):
            if name == "compile" or trained.get(name) == wanted.get(name):
                continue
            if name == "epochs":
                notes.append(
                    f"the profile asks for {key.split('_')[0]}.epochs {wanted.get(name)}; `{key}` was trained "
                    f"{trained.get(name)} epochs"
                )
            else:
                differing.append(f"{key} {name}: trained {trained.get(name)!r}, profile {wanted.get(name)!r}")
    if differing:
        raise ReleaseError(
            f"the profile in force ({profile.name}) is not the one the networks in {data_dir} were trained with: "
            + "; ".join(differing)
            + ". Export with that run's profile (--profile PATH, or S2I_PROFILE), so the release describes them."
        )
    return notes


def export_data_release(
    data_dir: Path | str, dim: int, out: Path | str, profile: Profile, *, force: bool = False
) -> Release:
    """A release of `dim` from a data folder: the last GAN checkpoint, its optimizer states, the autoencoder,
    the scaling statistics, and the classifiers, labels and used_videos.csv when they exist."""
    from s2i_models.checkpoint import load_checkpoint

    data_dir = Path(data_dir).expanduser()
    keys = ("spectrogram_stats", f"autoencoder_{dim}", f"audio_embeddings_{dim}", f"gan_{dim}")
    manifests = {key: _manifest(data_dir, key, dim) for key in keys}
    _check_chain(data_dir, dim, manifests)
    notes = _check_profile(profile, dim, manifests, data_dir)
    ae_manifest, gan_manifest = manifests[f"autoencoder_{dim}"], manifests[f"gan_{dim}"]
    ae_dir, gan_dir = data_dir / f"autoencoder_{dim}", data_dir / f"gan_{dim}"

    ae_name = ae_manifest.data["checkpoint"]
    autoencoder = load_checkpoint(ae_dir / ae_name)
    gan_name = gan_manifest.data["checkpoints"][-1]
    gan = load_checkpoint(gan_dir / gan_name)
    settings = profile_settings(profile)

    with _building(Path(out), force) as writer:
        writer.copy(
            AUTOENCODER,
            ae_dir / ae_name,
            f"audio autoencoder, dim {dim}, epoch {autoencoder['epoch']} (autoencoder_{dim})",
            ae_manifest.files.get(ae_name),
            f"autoencoder_{dim}",
        )
        writer.copy(
            GAN,
            gan_dir / gan_name,
            f"generator and discriminator, dim {dim}, epoch {gan['epoch']} (gan_{dim}: {Path(gan_name).name})",
            gan_manifest.files.get(gan_name),
            f"gan_{dim}",
        )
        optimizers = _optimizer_states(gan_dir / Path(gan_name).parent.parent / "resume.pt", gan["epoch"])
        if optimizers is None:
            notes.append(
                f"no optimizer states: the GAN's training folder holds none for epoch {gan['epoch']} (it was "
                "deleted or has trained on since); fine-tuning starts the optimizers afresh"
            )
        else:
            writer.save(GAN_OPTIMIZERS, optimizers, f"SGD states of G and D after epoch {gan['epoch']}")
        stats_manifest = manifests["spectrogram_stats"]
        writer.copy(
            STATS,
            data_dir / "spectrogram_stats" / "stats.json",
            "log-mel scaling statistics of the training split (a new sound is scaled with them)",
            stats_manifest.files.get("stats.json"),
            "spectrogram_stats",
        )
        if (gan_dir / "history.parquet").is_file():
            writer.copy(
                GAN_HISTORY,
                gan_dir / "history.parquet",
                "the GAN's per-epoch losses",
                gan_manifest.files.get("history.parquet"),
                f"gan_{dim}",
            )
        _copy_optional(writer, data_dir, profile)
        writer.write_bytes(PROFILE, _profile_yaml(settings), "the profile in force at export, as YAML")
        data = _release_data(
            dim,
            writer.files,
            source={
                "kind": "data folder",
                "path": str(data_dir.absolute()),
                "fingerprints": {key: manifest.fingerprint for key, manifest in manifests.items()},
            },
            epochs={"autoencoder": int(autoencoder["epoch"]), "gan": int(gan["epoch"])},
            networks=_networks(autoencoder["config"], gan["config"]),
            spectrogram_scaling=json.loads((data_dir / "spectrogram_stats" / "stats.json").read_text()).get(
                "method"
            ),
            classes=dict(profile.classes),
            profile=settings,
            notes=notes,
        )
        write_json_atomic(writer.folder / RELEASE_JSON, data)
    return read_release(out, verify=False)


def _networks(autoencoder_config: dict, gan_config: dict) -> dict[str, Any]:
    return {
        "autoencoder": {"width": autoencoder_config["width"]},
        "generator": {"kind": gan_config.get("generator", "dense"), "width": gan_config["width"]},
        "discriminator": {"width": gan_config["width"]},
    }


def _optimizer_states(resume_path: Path, epoch: int) -> dict | None:
    """The optimizer states in a GAN training folder's resume.pt, when it is at `epoch` (else None)."""
    from s2i_models.checkpoint import load_checkpoint

    if not resume_path.is_file():
        return None
    state = load_checkpoint(resume_path)
    if state.get("epoch") != epoch:
        return None
    return {
        "epoch": epoch,
        "optimizer_g": state["optimizer_g"],
        "optimizer_d": state["optimizer_d"],
        "config": state["config"],
    }


def _copy_optional(writer: _Writer, data_dir: Path, profile: Profile) -> None:
    """The classifiers, labels and used_videos.csv, each when the data folder has them."""
    classifiers = read_manifest(data_dir / "informativity_classifiers")
    if classifiers is not None:
        folder = data_dir / "informativity_classifiers"
        for name, checksum in sorted(classifiers.files.items()):
            if name.endswith(".pt") and "/" not in name:
                what = f"informativity classifier of {profile.classes.get(name[:-3], name[:-3])}"
                writer.copy(
                    f"{CLASSIFIERS}/{name}", folder / name, what, checksum, "informativity_classifiers"
                )
        if "accuracy.parquet" in classifiers.files:
            writer.copy(
                f"{CLASSIFIERS}/accuracy.parquet",
                folder / "accuracy.parquet",
                "the classifiers' held-out accuracy",
                classifiers.files["accuracy.parquet"],
                "informativity_classifiers",
            )
    labels = read_manifest(data_dir / "informativity_labels")
    if labels is not None and "labels.parquet" in labels.files:
        writer.copy(
            LABELS,
            data_dir / "informativity_labels" / "labels.parquet",
            "the informativity labels the classifiers learnt from",
            labels.files["labels.parquet"],
            "informativity_labels",
        )
    used = data_dir / "splits" / "used_videos.csv"
    if used.is_file():
        splits = read_manifest(data_dir / "splits")
        checksum = splits.files.get("used_videos.csv") if splits is not None else None
        writer.copy(USED_VIDEOS, used, "the videos (and seconds) the splits used", checksum, "splits")


# ---- from the authors' released networks -----------------------------------------------------------------------


def export_authors_release(
    models_dir: Path | str, dim: int, out: Path | str, *, force: bool = False
) -> Release:
    """A release of the authors' networks (leofanzeres/s2i trained_models/): their autoencoder, generator and
    discriminator of `dim` in this project's checkpoint formats, and C1-C5 as the classifiers."""
    import pandas as pd

    from pipelines.data.classes import VEGAS_CLASSES
    from s2i_models import authors
    from s2i_models.train.gan import GanConfig

    models_dir = Path(models_dir).expanduser()
    try:
        ae_file = authors.authors_file(models_dir, "autoencoder", dim)
        g_file = authors.authors_file(models_dir, "generator", dim)
        d_file = authors.authors_file(models_dir, "discriminator", dim)
        autoencoder = authors.autoencoder_checkpoint(ae_file)
        autoencoder.pop("source", None)  # a local path: not part of what is shared
        generator = authors.load_authors_generator(g_file)
        discriminator = authors.load_authors_discriminator(d_file)
        classifiers = {
            name: authors.classifier_checkpoint(
                authors.authors_file(models_dir, "classifier", class_name=name), name
            )
            for name in authors.AUTHORS_CLASSES
        }
    except authors.AuthorsModelError as error:
        raise ReleaseError(str(error)) from None
    if discriminator.dim != dim or generator.arch.dim != dim:
        raise ReleaseError(f"{g_file.name} and {d_file.name} are not both dim {dim} networks")
    width = generator.arch.width
    d_width = discriminator.arch.width
    if abs(d_width - width) > 1e-9:
        raise ReleaseError(
            f"{g_file.name} has width {width:g} but {d_file.name} has {d_width:g}: s2i's GAN has one width for both"
        )
    epoch = authors.epoch_of(g_file)
    config = asdict(GanConfig(dim=dim, generator="dense", width=width, epochs=max(epoch, 1)))
    gan = {
        "epoch": epoch,
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "config": config,
    }
    originals = [ae_file, g_file, d_file] + [
        authors.authors_file(models_dir, "classifier", class_name=n) for n in authors.AUTHORS_CLASSES
    ]
    with _building(Path(out), force) as writer:
        writer.save(AUTOENCODER, autoencoder, f"the authors' audio autoencoder, dim {dim} ({ae_file.name})")
        writer.save(
            GAN, gan, f"the authors' generator and discriminator, dim {dim} ({g_file.name}, {d_file.name})"
        )
        stats = {
            "method": "uint8",
            "min": 0.0,
            "max": 255.0,
            "note": (
                "the authors' networks read 8-bit spectrograms scaled x / 255 * 2 - 1; a new sound's log-mel is "
                "mapped onto 0..255 approximately (pipelines.media.logmel.authors_spectrogram)"
            ),
        }
        writer.write_bytes(STATS, (json.dumps(stats, indent=2) + "\n").encode(), "spectrogram scaling: 8-bit")
        rows = []
        for (name, checkpoint), source in zip(classifiers.items(), originals[3:], strict=True):
            checkpoint.pop("source", None)
            writer.save(
                f"{CLASSIFIERS}/{name}.pt", checkpoint, f"the authors' classifier for {VEGAS_CLASSES[name]}"
            )
            rows.append(
                {
                    "class_name": name,
                    "file": source.name,
                    "test_accuracy": checkpoint["test_accuracy"],
                    "chance": 0.5,
                }
            )
        writer.write_bytes(
            f"{CLASSIFIERS}/accuracy.parquet",
            pd.DataFrame(rows).to_parquet(index=False, compression="zstd"),
            "the accuracy the paper reports for C1-C5 (§5.3)",
        )
        data = _release_data(
            dim,
            writer.files,
            source={
                "kind": "authors",
                "repository": authors.REPOSITORY,
                "license": "BSD-3-Clause",
                "files": {path.name: sha256_file(path) for path in originals},
            },
            epochs={"autoencoder": authors.epoch_of(ae_file), "gan": epoch},
            networks=_networks(autoencoder["config"], config),
            spectrogram_scaling="uint8",
            classes={name: VEGAS_CLASSES[name] for name in authors.AUTHORS_CLASSES},
            profile=None,
            notes=[
                "no optimizer states: the authors released weights only; fine-tuning starts the optimizers afresh"
            ],
        )
        write_json_atomic(writer.folder / RELEASE_JSON, data)
    return read_release(out, verify=False)


# ---- fine-tuning (gan.init_from) ---------------------------------------------------------------------------------


def init_release(settings: Profile, dim: int) -> Path | None:
    """The release `gan_{dim}` starts from (`gan.init_from`: one path for every dim, or {dim: path})."""
    init_from = settings.gan.init_from
    if isinstance(init_from, dict):
        init_from = init_from.get(dim)
    return None if init_from is None else Path(init_from).expanduser()


def init_fingerprints(settings: Profile) -> dict[str, str]:
    """What the releases named in `gan.init_from` are, by their release.json's sha256 ({} without any)."""
    init_from = settings.gan.init_from
    if init_from is None:
        return {}
    paths = init_from if isinstance(init_from, dict) else {"all": init_from}
    return {
        str(dim): release_fingerprint(Path(path).expanduser()) for dim, path in sorted(paths.items(), key=str)
    }


def gan_init(folder: Path, config: GanConfig) -> dict[str, Any]:
    """The state a GAN's training starts from when fine-tuning: the release's generator and discriminator
    weights, and its optimizer states when it has them. Checksums are verified first; a release of another
    dim, generator kind or width is refused with what to change."""
    from s2i_models.checkpoint import load_checkpoint
    from s2i_models.train.gan import build_networks

    release = read_release(folder)
    if release.dim != config.dim:
        raise ReleaseError(
            f"gan.init_from: the release {folder} holds dim {release.dim} networks; gan_{config.dim} cannot start "
            f"from them. Materialize gan_{release.dim} only, or give gan.init_from per dim, e.g. "
            f"{{{release.dim}: {folder}}}"
        )
    networks = release.data.get("networks", {})
    kind = networks.get("generator", {}).get("kind", "dense")
    checkpoint = load_checkpoint(release.path(GAN))
    generator, discriminator = build_networks(config)
    mismatched = [
        f"{part}.{key}: release {tuple(value.shape)}, profile {tuple(own[key].shape)}"
        for part, own in (
            ("generator", generator.state_dict()),
            ("discriminator", discriminator.state_dict()),
        )
        for key, value in checkpoint[part].items()
        if key in own and tuple(value.shape) != tuple(own[key].shape)
    ]
    if kind != config.generator or mismatched:
        width = networks.get("generator", {}).get("width")
        raise ReleaseError(
            f"gan.init_from: the release {folder} has a {kind} generator of width {width} (generator and "
            f"discriminator); the profile asks for a {config.generator} generator of width {config.width:g}"
            + (f" (first differing tensor: {mismatched[0]})" if mismatched else "")
            + f". Set gan: {{generator: {kind}, width: {width}}} in the profile to fine-tune this release."
        )
    init: dict[str, Any] = {
        "generator": checkpoint["generator"],
        "discriminator": checkpoint["discriminator"],
        "epoch": int(checkpoint.get("epoch", 0)),
    }
    if GAN_OPTIMIZERS in release.files:
        optimizers = load_checkpoint(release.path(GAN_OPTIMIZERS))
        init["optimizer_g"], init["optimizer_d"] = optimizers["optimizer_g"], optimizers["optimizer_d"]
    return init


def same_autoencoder(release: Path, checkpoint_path: Path) -> bool:
    """Whether a release's autoencoder has the weights of `checkpoint_path` (a data folder's autoencoder)."""
    import torch

    from s2i_models.checkpoint import load_checkpoint

    listed = read_release(release, verify=False).files.get(AUTOENCODER, {})
    if listed.get("sha256") == sha256_file(checkpoint_path):
        return True
    theirs = load_checkpoint(release / AUTOENCODER)["model"]
    ours = load_checkpoint(checkpoint_path)["model"]
    return theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)
