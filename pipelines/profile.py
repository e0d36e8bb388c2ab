"""Profiles: one YAML file of settings per way of running the pipeline, validated into typed settings.

`S2I_PROFILE` names a built-in profile (`demo`, `vegas`) or a path to a YAML file. A file may start
from another with `base: demo` (or `base: vegas`, or a path) and override keys. Settings sections (the
keys whose settings are a model here: `source` of the same kind, `splits`, `features`, `shards`,
`autoencoder`, `gan`, `evaluation`, `evaluation.classifier`) merge key by key; every other value replaces
the base's whole: scalars, lists (`evaluation.candidate_dims`) and mappings of values (`classes`,
`gan.init_from`), so `base: vegas` with seven classes has those seven, and a `source` of another kind
replaces the base's source. Relative paths inside a file are relative to that file. Any unknown key or
bad value fails at load with a message naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.data.classes import VEGAS_CLASSES

PROFILE_DIR = Path(__file__).resolve().parent.parent / "assets_config"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_PROFILE = "demo"
BUILT_IN_PROFILES = ("demo", "vegas", "paper")


class ProfileError(ValueError):
    """A profile that cannot be used; the message says which file and key, and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoSource(_Strict):
    """Synthetic clips made with ffmpeg by `pipelines.data.demo`."""

    kind: Literal["demo"]
    clips_per_class: int = Field(24, ge=2, le=10_000)


class LocalSource(_Strict):
    """A VEGAS copy on disk, laid out `<root>/<class>/videos/*.mp4`."""

    kind: Literal["local"]
    root: Path


class YoutubeSource(_Strict):
    """AudioSet-style manifest rows `class_name,ytid,start_seconds,end_seconds` fetched with yt-dlp.

    `cookies` is a Netscape cookies.txt exported from a browser signed in to YouTube (the remedy for "Sign
    in to confirm you're not a bot"); yt-dlp reads it, s2i never modifies, copies or logs it, and it is
    left out of dumps of the settings (artifact manifests). `pause_s` is the least time between the first
    requests of two download attempts, across all workers; after `max_bot_checks` bot checks in a row (0:
    never) the download stops early, and the next run resumes.
    """

    kind: Literal["youtube"]
    manifest: Path
    download_workers: int = Field(4, ge=1, le=64)
    retries: int = Field(3, ge=0, le=20)
    timeout_s: float = Field(120.0, gt=0)
    cookies: Path | None = Field(None, exclude=True)
    pause_s: float = Field(0.0, ge=0, le=3600)
    max_bot_checks: int = Field(20, ge=0)

    @field_validator("cookies")
    @classmethod
    def _cookies_file(cls, cookies: Path | None) -> Path | None:
        if cookies is not None and not cookies.is_file():
            what = "is not a file" if cookies.exists() else "does not exist"
            raise ValueError(
                f"the cookies file {cookies} {what}: export your browser's cookies for youtube.com to a "
                "cookies.txt (Netscape format) and give its path (relative to the profile), or remove "
                "`cookies`"
            )
        return cookies


class S2IDataSource(_Strict):
    """A clone of the authors' released batches (leofanzeres/s2i_data): the paper's segments and splits."""

    kind: Literal["s2i_data"]
    root: Path


Source = Annotated[DemoSource | LocalSource | YoutubeSource | S2IDataSource, Field(discriminator="kind")]


class SplitSizes(_Strict):
    """One-second segments per class in each split (the paper: 9789 / 1115 / 1365)."""

    train: int = Field(ge=1)
    val: int = Field(ge=1)
    test: int = Field(ge=1)

    def items(self) -> list[tuple[str, int]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]


class FeatureSettings(_Strict):
    sample_rate: Literal[16000] = 16000
    frame_size: int = Field(96, ge=16, le=512)
    n_mels: Literal[128] = 128


class ShardSettings(_Strict):
    samples_per_shard: int = Field(2000, ge=1)
    frame_format: Literal["npy", "png"] = "npy"


Precision = Literal["fp32", "bf16", "fp16"]


class SpeedSettings(_Strict):
    """How a training step runs, not what it computes (s2i_models/train/fast_step.py): not in fingerprints, and
    a run resumes across them. `graphed` captures the whole step as CUDA graphs (plain on a CPU);
    `channels_last` and fused SGD help on a GPU and are slower on a CPU."""

    step: Literal["plain", "graphed"] = "plain"
    memory_format: Literal["contiguous", "channels_last"] = "contiguous"
    sgd: Literal["default", "foreach", "fused"] = "default"


class AutoencoderSettings(SpeedSettings):
    """The audio autoencoder (SPEC §4): MSE, SGD lr 0.05, momentum 0.9, batch 64."""

    width: float = Field(1.0, gt=0, le=4)  # channel multiplier: 1.0 is the paper's network
    epochs: int = Field(1000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    checkpoint_every: int = Field(10, ge=1)
    precision: Precision = "fp32"
    compile: bool = False  # torch.compile the network (a GPU's launch overhead); same math
    # "authors": no training; `autoencoder_{dim}` is the authors' released autoencoder of that size
    # (from `authors_models`), so a GAN sweep starts from the paper's own embeddings.
    pretrained: Literal["none", "authors"] = "none"


class GanSettings(SpeedSettings):
    """The conditional GAN (SPEC §4, Algorithm 1): G and D SGD lr 0.1, momentum 0.5, batch 64, lambda 0.1."""

    generator: Literal["dense", "sequential"] = "dense"
    width: float = Field(1.0, gt=0, le=4)
    epochs: int = Field(4000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.5, ge=0, lt=1)
    adversarial_weight: float = Field(0.1, ge=0)  # lambda, Eq. 6
    adversarial_average_epochs: int = Field(5, ge=1)  # k, Eq. 5 (the paper does not give it)
    discriminator_every: int = Field(5, ge=1)  # n_gd
    discriminator_unit: Literal["epoch", "step"] = "epoch"
    checkpoint_every: int = Field(50, ge=1)
    precision: Precision = "fp32"
    compile: bool = False  # torch.compile G and D (a GPU's launch overhead); same math, resumable either way
    preview_sounds_per_class: int = Field(2, ge=1, le=16)  # fixed validation sounds in the image grid
    # The `learned_not_collapsed` check (s2i_models/collapse.py): `error` fails the GAN and stops what depends
    # on it; `warn` reports without stopping (for runs too short to learn, like the tests' tiny profile).
    collapse_check: Literal["error", "warn"] = "error"
    # Fine-tuning: a release folder (`s2i export`) whose generator, discriminator and optimizer states the
    # training starts from instead of a fresh init; its checksums are verified first and its dim and widths
    # must match. One path for every dim, or {dim: path} (the other dims then train from scratch).
    init_from: Path | dict[Literal[128, 256, 512, 1024, 2048], Path] | None = None


class ClassifierSettings(_Strict):
    """The per-class informativity classifiers (SPEC §5): SGD lr 0.001, momentum 0.9, weight decay 5e-5."""

    width: float = Field(1.0, gt=0, le=4)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.001, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-5, ge=0)
    train_fraction: float = Field(0.8, gt=0, lt=1)


class EvaluationSettings(_Strict):
    """Informativity evaluation (SPEC §5): labelled candidates, classifiers, per-epoch informativity."""

    # trained: classifiers learnt from labelled candidates (a person's, or the demo's oracle);
    # authors: the paper's own judges C1-C5 from `authors_models`, with no labelling step.
    classifiers: Literal["trained", "authors"] = "trained"
    # Judges that exist before the GANs train, so each GAN's training loop records its informativity at
    # every epoch (the paper's measurement): the authors' classifiers (classifiers: authors) or, here, the
    # folder of an earlier round's `informativity_classifiers` (its <class>.pt files).
    judges: Path | None = None
    labels: Literal["person", "oracle"] = "person"  # oracle: the demo's automatic stand-in for a person
    labels_per_class: int = Field(
        500, ge=1
    )  # target informative images per class (and as many non-informative)
    min_labels_per_class: int = Field(8, ge=2)  # fewer of either label in a class is an error
    candidate_dims: list[Literal[128, 256, 512, 1024, 2048]] = [128, 256, 512, 1024, 2048]
    checkpoints_per_dim: int = Field(4, ge=1)  # evenly spaced over each candidate GAN's saved checkpoints
    candidate_sounds_per_class: int | None = Field(250, ge=1)  # validation sounds per class (None: all)
    candidate_samples: int = Field(1, ge=1, le=64)  # MC-dropout images per validation sound and checkpoint
    oracle_margin: float = Field(0.5, gt=0, lt=1)  # p(sound's class) - max p(any other) for "informative"
    test_samples: int = Field(1, ge=1, le=64)  # MC-dropout translations per test sound and checkpoint
    window: tuple[int, int] = (500, 4000)  # epochs averaged in the first summary (inclusive)
    moving_average_epochs: int = Field(50, ge=1)
    schedule: str = "0 3 * * *"  # cron: nightly re-evaluation from the latest checkpoints
    classifier: ClassifierSettings = ClassifierSettings()

    @field_validator("window")
    @classmethod
    def _ordered(cls, window: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= window[0] <= window[1]:
            raise ValueError(f"window must be [start, end] epochs with 0 <= start <= end, got {list(window)}")
        return window

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        fields = schedule.split()
        if len(fields) != 5:
            raise ValueError(
                "schedule must be a 5-field cron string (minute hour day month weekday), e.g. '0 3 * * *'"
            )
        return schedule


class Profile(_Strict):
    """Validated settings. `name` and `path` say where they came from."""

    name: str
    path: Path | None = None
    seed: int = Field(ge=0, lt=2**32)
    workers: int = Field(ge=1, le=256)
    source: Source
    classes: dict[str, str]
    splits: SplitSizes
    features: FeatureSettings = FeatureSettings()
    shards: ShardSettings = ShardSettings()
    autoencoder: AutoencoderSettings = AutoencoderSettings()
    gan: GanSettings = GanSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    # The trained_models/ folder of a clone of the authors' repository (leofanzeres/s2i, with Git LFS).
    authors_models: Path | None = None

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, workers: object) -> object:
        return os.cpu_count() or 1 if workers == "auto" else workers

    @field_validator("classes")
    @classmethod
    def _class_keys(cls, classes: dict[str, str]) -> dict[str, str]:
        if not classes:
            raise ValueError("at least one class is needed, e.g. dog: Dog")
        for key in classes:
            if not re.fullmatch(r"[a-z0-9_]+", key):
                raise ValueError(
                    f"class key {key!r} must be lower-case letters, digits and _ (e.g. baby_cry)"
                )
        return classes

    @model_validator(mode="after")
    def _demo_classes(self) -> Profile:
        if isinstance(self.source, DemoSource):
            unknown = sorted(set(self.classes) - set(VEGAS_CLASSES))
            if unknown:
                raise ValueError(
                    f"the demo source can only make the classes {sorted(VEGAS_CLASSES)}; not {unknown}"
                )
        return self

    @model_validator(mode="after")
    def _authors_networks(self) -> Profile:
        wanted = []
        if self.autoencoder.pretrained == "authors":
            wanted.append("autoencoder.pretrained: authors")
            if getattr(self.source, "kind", None) != "s2i_data":
                raise ValueError(
                    "autoencoder.pretrained: authors needs source kind s2i_data: the authors' encoder reads "
                    "their 8-bit spectrograms, not this project's log-mels"
                )
        if self.evaluation.classifiers == "authors":
            wanted.append("evaluation.classifiers: authors")
            unknown = sorted(set(self.classes) - set(VEGAS_CLASSES))
            if unknown:
                raise ValueError(
                    f"the authors' classifiers judge only {sorted(VEGAS_CLASSES)}; classes {unknown} have none"
                )
        if wanted and self.authors_models is None:
            raise ValueError(
                f"{' and '.join(wanted)} need authors_models: the trained_models/ folder of a clone of "
                "leofanzeres/s2i (git lfs install; git clone https://github.com/leofanzeres/s2i; git lfs pull)"
            )
        return self

    @property
    def class_names(self) -> list[str]:
        return list(self.classes)

    def section_fingerprint(self, *keys: str) -> str:
        """A stable hash of the named top-level settings (what an asset's output depends on)."""
        data = self.model_dump(mode="json", include=set(keys))
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _resolve_profile_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    if name_or_path in BUILT_IN_PROFILES:
        return PROFILE_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if not path.is_file():
        raise ProfileError(
            f"profile {name_or_path!r}: no such built-in profile ({', '.join(BUILT_IN_PROFILES)}) and no file at "
            f"{path}. Set S2I_PROFILE to {', '.join(BUILT_IN_PROFILES)}, or the path of a YAML profile."
        )
    return path.resolve()


def _merge(
    base: dict[str, Any], override: dict[str, Any], model: type[BaseModel] = Profile
) -> dict[str, Any]:
    """`override` over `base`: a settings section of `model` merges key by key, any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        previous = merged.get(key)
        section = _section(model, key, previous, value)
        if section is not None and isinstance(value, dict) and isinstance(previous, dict):
            merged[key] = _merge(previous, value, section)
        else:
            merged[key] = value
    return merged


def _section(model: type[BaseModel], key: str, previous: Any, value: Any) -> type[BaseModel] | None:
    """The settings model of `model.key` when it is a section that merges key by key, else None."""
    if model is Profile and key == "source":
        # A source of the same kind merges; a new kind replaces the old source instead of mixing two kinds.
        if not (isinstance(previous, dict) and isinstance(value, dict)):
            return None
        kind = previous.get("kind")
        return _SOURCE_KINDS.get(kind) if value.get("kind", kind) == kind else None
    field = model.model_fields.get(key)
    annotation = field.annotation if field else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _absolute(value: str, folder: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def _make_paths_absolute(data: dict[str, Any], folder: Path) -> None:
    if isinstance(data.get("authors_models"), str):
        data["authors_models"] = _absolute(data["authors_models"], folder)
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict) and isinstance(evaluation.get("judges"), str):
        evaluation["judges"] = _absolute(evaluation["judges"], folder)
    gan = data.get("gan")
    if isinstance(gan, dict) and isinstance(gan.get("init_from"), str):
        gan["init_from"] = _absolute(gan["init_from"], folder)
    elif isinstance(gan, dict) and isinstance(gan.get("init_from"), dict):
        gan["init_from"] = {
            dim: _absolute(path, folder) if isinstance(path, str) else path
            for dim, path in gan["init_from"].items()
        }
    source = data.get("source")
    if isinstance(source, dict):
        for key in ("root", "manifest", "cookies"):
            value = source.get(key)
            if isinstance(value, str):
                source[key] = _absolute(value, folder)


def _read_layers(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ProfileError(f"profile {path}: `base` chain loops: {' -> '.join(map(str, seen + (path,)))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ProfileError(f"profile {path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ProfileError(
            f"profile {path}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    _make_paths_absolute(data, path.parent)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ProfileError(
            f"profile {path}: base = {base!r}: must be demo, vegas, paper or a path to a YAML file"
        )
    return _merge(_read_layers(_resolve_profile_path(base, path.parent), seen + (path,)), data)


_SOURCE_KINDS: dict[str, type[BaseModel]] = {
    "demo": DemoSource,
    "local": LocalSource,
    "youtube": YoutubeSource,
    "s2i_data": S2IDataSource,
}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at `loc`, pydantic's location with source-kind tags (for 'unknown key' messages)."""
    parts = loc[:-1]
    for index, part in enumerate(parts):
        if part in _SOURCE_KINDS:
            model = _SOURCE_KINDS[part]
            continue
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif index + 1 < len(parts) and parts[index + 1] in _SOURCE_KINDS:
            continue
        else:
            return []
    return [name for name in model.model_fields if name not in ("name", "path")]


def _explain(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if part not in _SOURCE_KINDS)
        key = ".".join(str(part) for part in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(Profile, item["loc"])
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"  {key}: unknown key{hint}")
        elif item["type"] == "missing":
            lines.append(f"  {key}: required but missing")
        else:
            lines.append(f"  {key} = {item.get('input')!r}: {item['msg']}")
    return f"profile {path} is not valid:\n" + "\n".join(lines)


def load_profile(name_or_path: str | None = None) -> Profile:
    """Load `name_or_path`, or `S2I_PROFILE`, or the demo profile."""
    name_or_path = name_or_path or os.environ.get("S2I_PROFILE") or DEFAULT_PROFILE
    path = _resolve_profile_path(name_or_path)
    data = _read_layers(path)
    data.setdefault("name", path.stem)
    data["path"] = str(path)
    try:
        return Profile.model_validate(data)
    except ValidationError as error:
        raise ProfileError(_explain(error, path)) from None
