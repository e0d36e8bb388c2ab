"""The authors' released networks (leofanzeres/s2i, `trained_models/`, BSD-3) in this project's modules.

The authors published five audio autoencoders (one per embedding size), a dense generator and its
discriminator (dim 512, epoch 3679) and the five informativity classifiers C1-C5 that judged every figure
of the paper. Their files are plain PyTorch state dicts of their own module layout; this module maps each
key onto the project's network, converts what differs and checks every shape, so that the loaded network
computes what the authors' network computes (tests/test_authors.py checks it against a rebuild of their
layout from its description).

What differs, and how it is converted:
- Names: the authors name layers `conv1`, `conv1_bn`, `convT1`, `transition0`, ...; the project nests
  them in `nn.Sequential`s. `KEY_MAPS` below lists every pair.
- Files saved through `nn.DataParallel` prefix every key with `module.`: stripped.
- The authors' dense-block layers are `ConvTranspose2d(k3, s1, p1)`; the project's are `Conv2d(k3, s1, p1)`.
  The two compute the same map when the conv's weight is the transposed conv's with in/out swapped
  (PyTorch lays a transposed conv's weight out in x out) and the kernel flipped: W_conv = flip(W_T^T).
- The authors' classifier has an `fc1` block that its forward skips (`fc1_pass = False`); its weights are
  in the file and are checked for shape, then left out. Its dropout rates (0.1-0.5 by depth, 0.5 on the
  FC layer) are kept in the project's classifier, though they only act in training.
- The generator's dropout layers sit where the authors' do (after transitions 0-5), with the same rates,
  and stay on in eval mode (MC dropout), as in the authors' test script.

Inputs the authors' networks expect (their loaders: `ToTensor()` then `Normalize(0.5, 0.5)`):
- images (the classifiers' and discriminator's input, the generator's target): uint8 / 127.5 - 1, which is
  `s2i_models.loaders.image_batch`; generated images go to the classifiers as they come out of tanh.
- spectrograms (the autoencoders' input): the authors' 8-bit (128 mel x 100 time) spectrograms / 127.5 - 1,
  with the highest mel band in row 0 (the images were saved top = high frequency).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

# C1-C5 judge these classes, in the authors' numbering c001-c005.
AUTHORS_CLASSES = ("baby_cry", "dog", "rail_transport", "fireworks", "water_flowing")
# Held-out accuracy of C1-C5 as the paper reports it (§5.3), in AUTHORS_CLASSES order.
PAPER_CLASSIFIER_ACCURACY = (0.80, 0.80, 0.84, 0.82, 0.815)

AUTOENCODER_FILES = {
    128: "net_audio_autoencoder_model_(test_72_1-2_epoch_1999).pth",
    256: "net_audio_autoencoder_model_(test_71_1-2_epoch_1999).pth",
    512: "net_audio_autoencoder_model_(test_66_2_epoch_995).pth",
    1024: "net_audio_autoencoder_model_(test_70_1-2_epoch_1999).pth",
    2048: "net_audio_autoencoder_model_(test_73_1-2_epoch_1995).pth",
}
GENERATOR_FILES = {512: "net_visual_generator_model_(test_191_R3_1-4_TS_epoch_3679).pth"}
DISCRIMINATOR_FILES = {512: "net_discriminator_model_(test_191_R3_1-4_TS_epoch_3679).pth"}
CLASSIFIER_FILES = (
    "net_visual_interpret_model_C1_(test_2_R2_epoch_165).pth",
    "net_visual_interpret_model_C2_(test_2_R2_epoch_146).pth",
    "net_visual_interpret_model_C3_(test_2_R_epoch_220).pth",
    "net_visual_interpret_model_C4_(test_2_R5_epoch_205).pth",
    "net_visual_interpret_model_C5_(test_2_R2_epoch_224).pth",
)
CLASSIFIER_DROPOUT = (0.1, 0.2, 0.3, 0.4, 0.5, 0.5)  # after conv1-5 and fc2, as in their classifier
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
REPOSITORY = "leofanzeres/s2i"


class AuthorsModelError(ValueError):
    """An authors' model file that cannot be loaded; the message names the file and what to do."""


# ---- key maps: the authors' module name -> the project's module name (weights and BN buffers follow) --------


def _autoencoder_map() -> dict[str, str]:
    names = {}
    for k in range(1, 14):
        names[f"conv{k}"] = f"encoder.layers.{k - 1}.0"
        names[f"conv{k}_bn"] = f"encoder.layers.{k - 1}.1"
    for k in range(1, 13):
        names[f"convT{k}"] = f"decoder.layers.{k - 1}.0"
        names[f"convT{k}_bn"] = f"decoder.layers.{k - 1}.1"
    names["convT13"] = "decoder.layers.12"
    names["convT13_bn"] = "decoder.layers.13"
    return names


def _generator_map() -> dict[str, str]:
    # The project's DenseGenerator.layers: T0, B1, T1, B2, ..., B6, T6 -> indices 0, 1, 2, ..., 11, 12.
    names = {}
    for t in range(7):
        names[f"transition{t}"] = f"layers.{2 * t}.0"
        names[f"transition{t}_bn"] = f"layers.{2 * t}.1"
    for k in range(1, 19):
        block, layer = divmod(k - 1, 3)
        names[f"convT{k}"] = f"layers.{2 * block + 1}.layer{layer + 1}.0"
        names[f"convT{k}_bn"] = f"layers.{2 * block + 1}.layer{layer + 1}.1"
    return names


def _discriminator_map() -> dict[str, str]:
    names = {}
    for k in range(1, 13):
        names[f"conv{k}"] = f"features.{k - 1}.0"
        names[f"conv{k}_bn"] = f"features.{k - 1}.1"
    names["conv13"] = "score.0"
    names["conv13_bn"] = "score.1"
    return names


def _classifier_map() -> dict[str, str]:
    names = {}
    for k in range(1, 6):
        names[f"conv{k}"] = f"features.{k - 1}.0"
        names[f"conv{k}_bn"] = f"features.{k - 1}.1"
    names["fc2"] = "head.0"
    names["fc2_bn"] = "head.1"
    names["fc3"] = "head.4"
    return names


KEY_MAPS: dict[str, dict[str, str]] = {
    "autoencoder": _autoencoder_map(),
    "generator": _generator_map(),
    "discriminator": _discriminator_map(),
    "classifier": _classifier_map(),
}
# Layers in a file that the authors' forward never uses: checked for shape, then left out.
UNUSED_LAYERS: dict[str, dict[str, tuple[str, ...]]] = {"classifier": {"fc1": ("weight",), "fc1_bn": ()}}
# The generator's dense-block layers are ConvTranspose2d in the authors' files, Conv2d here.
TRANSPOSED_AS_CONV = {f"convT{k}" for k in range(1, 19)}


def transposed_to_conv_weight(weight: torch.Tensor) -> torch.Tensor:
    """A stride-1 ConvTranspose2d weight (in, out, kh, kw) -> the Conv2d weight (out, in, kh, kw) of the same
    map, with padding k - 1 - p (1 for the authors' k3 p1 layers)."""
    return weight.transpose(0, 1).flip(2, 3).contiguous()


# ---- reading a file ------------------------------------------------------------------------------------------


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict in an authors' file, loaded with weights_only=True, `module.` prefixes stripped."""
    path = Path(path)
    if not path.is_file():
        raise AuthorsModelError(
            f"{path}: no such file. Clone {REPOSITORY} with Git LFS (git lfs install; git clone "
            f"https://github.com/{REPOSITORY}; cd s2i; git lfs pull) and point at its trained_models/ folder."
        )
    with open(path, "rb") as stream:
        head = stream.read(len(LFS_POINTER))
    if head == LFS_POINTER:
        raise AuthorsModelError(
            f"{path} is a Git LFS pointer ({path.stat().st_size} bytes), not the model: run `git lfs pull` "
            "in the clone of the authors' repository to fetch the real file."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, an old format, or objects weights_only refuses
        raise AuthorsModelError(
            f"{path} cannot be read as a PyTorch state dict ({type(error).__name__}: {error}). It may be "
            "damaged or incomplete: fetch it again with `git lfs pull`."
        ) from error
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AuthorsModelError(f"{path} does not hold a state dict of tensors (got {type(state).__name__})")
    return {re.sub(r"^module\.", "", key): value for key, value in state.items()}


def convert_state_dict(
    state: Mapping[str, torch.Tensor], kind: str, path: Path | str
) -> dict[str, torch.Tensor]:
    """The authors' state dict of a `kind` network ("autoencoder", "generator", "discriminator",
    "classifier") with the project's key names and layouts. Unknown or missing layers raise an error
    naming the file and the key."""
    names = KEY_MAPS[kind]
    unused = UNUSED_LAYERS.get(kind, {})
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if module in unused:
            continue
        if module not in names:
            raise AuthorsModelError(
                f"{path}: key {key!r} is not a layer of the authors' {kind} (expected layers such as "
                f"{', '.join(list(names)[:4])}, ...); is this the right file for a {kind}?"
            )
        if kind == "generator" and module in TRANSPOSED_AS_CONV and leaf == "weight":
            value = transposed_to_conv_weight(value)
        converted[f"{names[module]}.{leaf}"] = value
    return converted


def _check_unused(state: Mapping[str, torch.Tensor], kind: str, width_of: Callable[[int], int], path) -> None:
    """The layers a forward skips must still be what the authors' network holds (fc1: 32 -> 32)."""
    for module, _leaves in UNUSED_LAYERS.get(kind, {}).items():
        weight = state.get(f"{module}.weight")
        if weight is None:
            continue
        n = width_of(32)
        expected = (n, n) if weight.ndim == 2 else (n,)
        if tuple(weight.shape) != expected:
            raise AuthorsModelError(
                f"{path}: {module}.weight has shape {tuple(weight.shape)}, the authors' classifier has "
                f"{expected}"
            )


def load_converted(
    model: nn.Module, converted: Mapping[str, torch.Tensor], path: Path | str, authors_keys: Mapping[str, str]
) -> None:
    """Load `converted` into `model` after checking that every key is there with its shape; the error names
    the file, the first mismatched key (the authors' name and the project's) and both shapes."""
    own = model.state_dict()
    back = {ours: theirs for theirs, ours in authors_keys.items()}

    def authors_name(key: str) -> str:
        module, _, leaf = key.rpartition(".")
        return f"{back.get(module, module)}.{leaf}"

    for key, value in converted.items():
        if key not in own:
            raise AuthorsModelError(
                f"{path}: {authors_name(key)} has no place in the project's network ({key})"
            )
        if tuple(own[key].shape) != tuple(value.shape):
            raise AuthorsModelError(
                f"{path}: shape mismatch at {authors_name(key)} (the project's {key}): the file has "
                f"{tuple(value.shape)}, the network expects {tuple(own[key].shape)}. The file is not the network "
                "this loader builds (another embedding size or architecture?)."
            )
    missing = [key for key in own if key not in converted]
    if missing:
        raise AuthorsModelError(
            f"{path}: the file lacks {authors_name(missing[0])} (the project's {missing[0]})"
            + (f" and {len(missing) - 1} more keys" if len(missing) > 1 else "")
        )
    model.load_state_dict(dict(converted))


def _width(channels: int, reference: int) -> float:
    return channels / reference


def _first(state: Mapping[str, torch.Tensor], key: str, path, kind: str) -> torch.Tensor:
    if key not in state:
        raise AuthorsModelError(
            f"{path}: no {key!r}: not an authors' {kind} file (its first layer is {key.split('.')[0]})"
        )
    return state[key]


# ---- the networks --------------------------------------------------------------------------------------------


def load_authors_autoencoder(path: Path | str, device: str = "cpu"):
    """An authors' audio autoencoder file -> `AudioAutoencoder` in eval mode (dim and width read from it)."""
    from s2i_models.autoencoder import AudioAutoencoder

    state = read_state_dict(path)
    width = _width(_first(state, "conv1.weight", path, "autoencoder").shape[0], 80)
    dim = int(_first(state, "conv13.weight", path, "autoencoder").shape[0])
    model = AudioAutoencoder(dim, width=width)
    load_converted(model, convert_state_dict(state, "autoencoder", path), path, KEY_MAPS["autoencoder"])
    return model.to(device).eval()


def load_authors_generator(path: Path | str, device: str = "cpu", mc_dropout: bool = True):
    """An authors' generator file -> `DenseGenerator` in eval mode, MC dropout on as in their tests."""
    from s2i_models.generator import DenseGenerator

    state = read_state_dict(path)
    first = _first(state, "transition0.weight", path, "generator")  # (dim, 512, 2, 2): in x out
    model = DenseGenerator(int(first.shape[0]), width=_width(first.shape[1], 512), mc_dropout=mc_dropout)
    load_converted(model, convert_state_dict(state, "generator", path), path, KEY_MAPS["generator"])
    return model.to(device).eval()


def load_authors_discriminator(path: Path | str, device: str = "cpu"):
    """An authors' discriminator file -> `Discriminator` in eval mode."""
    from s2i_models.discriminator import Discriminator

    state = read_state_dict(path)
    width = _width(_first(state, "conv1.weight", path, "discriminator").shape[0], 96)
    features = _first(state, "conv12.weight", path, "discriminator").shape[0]
    last_in = _first(state, "conv13.weight", path, "discriminator").shape[1]  # features + dim / 4
    model = Discriminator(int(4 * (last_in - features)), width=width)
    load_converted(model, convert_state_dict(state, "discriminator", path), path, KEY_MAPS["discriminator"])
    return model.to(device).eval()


def load_authors_classifier(path: Path | str, device: str = "cpu"):
    """An authors' informativity classifier file (C1-C5) -> `InformativityClassifier` in eval mode."""
    from s2i_models.informativity import InformativityClassifier
    from s2i_models.init import scaled

    state = read_state_dict(path)
    width = _width(_first(state, "conv1.weight", path, "classifier").shape[0], 12)
    model = InformativityClassifier(width=width, dropout=CLASSIFIER_DROPOUT)
    _check_unused(state, "classifier", lambda n: scaled(n, width), path)
    load_converted(model, convert_state_dict(state, "classifier", path), path, KEY_MAPS["classifier"])
    return model.to(device).eval()


# ---- the released folder -------------------------------------------------------------------------------------


def authors_file(
    models_dir: Path | str, kind: str, dim: int | None = None, class_name: str | None = None
) -> Path:
    """The path of one released file in `models_dir` (the clone's trained_models/), with a clear error when
    the folder or file is missing or the authors released no such network."""
    models_dir = Path(models_dir).expanduser()
    if not models_dir.is_dir():
        raise AuthorsModelError(
            f"{models_dir} is not a folder: point `authors_models` at the trained_models/ folder of a clone "
            f"of {REPOSITORY} (fetched with git lfs pull)."
        )
    if kind == "classifier":
        if class_name not in AUTHORS_CLASSES:
            raise AuthorsModelError(
                f"the authors released informativity classifiers for {', '.join(AUTHORS_CLASSES)}; not {class_name!r}"
            )
        name = CLASSIFIER_FILES[AUTHORS_CLASSES.index(class_name)]
    else:
        files = {
            "autoencoder": AUTOENCODER_FILES,
            "generator": GENERATOR_FILES,
            "discriminator": DISCRIMINATOR_FILES,
        }[kind]
        if dim not in files:
            raise AuthorsModelError(
                f"the authors released a {kind} for embedding sizes {sorted(files)} only, not {dim}"
            )
        name = files[dim]
    path = models_dir / name
    if not path.is_file():
        raise AuthorsModelError(
            f"{path}: missing from {models_dir}; the authors' {kind} file is {name} in {REPOSITORY}/trained_models"
        )
    return path


def load_authors_classifiers(models_dir: Path | str, class_names, device: str = "cpu") -> dict:
    """C1-C5 for the wanted classes, keyed by class name."""
    return {
        name: load_authors_classifier(authors_file(models_dir, "classifier", class_name=name), device)
        for name in class_names
    }


def epoch_of(path: Path | str) -> int:
    """The training epoch in a released file's name (`..._epoch_3679).pth` -> 3679), or 0."""
    found = re.search(r"epoch_(\d+)\)", Path(path).name)
    return int(found.group(1)) if found else 0


# ---- the project's checkpoint formats ------------------------------------------------------------------------


def autoencoder_checkpoint(path: Path | str) -> dict:
    """An authors' autoencoder as an `autoencoder_{dim}` checkpoint (`s2i_models.translate.load_autoencoder`
    reads it). Its input scaling is the 8-bit range: x / 255 * 2 - 1, the authors' Normalize(0.5, 0.5)."""
    from dataclasses import asdict

    from s2i_models.train.autoencoder import AutoencoderConfig

    model = load_authors_autoencoder(path)
    return {
        "epoch": epoch_of(path),
        "model": model.state_dict(),
        "config": asdict(AutoencoderConfig(dim=model.arch.dim, width=model.arch.width)),
        "stats": {"min": 0.0, "max": 255.0},
        "source": str(path),
    }


def classifier_checkpoint(path: Path | str, class_name: str) -> dict:
    """An authors' classifier as an `informativity_classifiers` checkpoint (`load_classifier` reads it), with
    the held-out accuracy the paper reports for it (measured by the authors on 200 images, 100 of each label)."""
    from dataclasses import asdict

    model = load_authors_classifier(path)
    return {
        "model": model.state_dict(),
        "arch": asdict(model.arch),
        "test_accuracy": PAPER_CLASSIFIER_ACCURACY[AUTHORS_CLASSES.index(class_name)],
        "chance": 0.5,
        "source": str(path),
    }
