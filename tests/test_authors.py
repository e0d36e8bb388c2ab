"""The authors' released networks load into the project's modules and compute what the authors' do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s2i_models import authors
from s2i_models.init import parameter_count
from tests.authors_reference import (
    AuthorsAutoencoder,
    AuthorsClassifier,
    AuthorsDiscriminator,
    AuthorsGenerator,
    randomize,
)

WIDTH = 0.125  # every hidden channel count stays an integer; 1/8 of the released networks
DIM = 128

# Sizes of the released files (Git LFS pointers in leofanzeres/s2i): a state dict of float32 tensors is
# 4 bytes a value plus a few hundred bytes of pickle per tensor.
RELEASED_BYTES = {
    ("autoencoder", 512): 133_764_129,
    ("autoencoder", 128): 119_600_661,
    ("autoencoder", 2048): 190_417_953,
    ("generator", 512): 154_660_571,
    ("discriminator", 512): 21_141_335,
    ("classifier", None): 148_610,
}


def _save(model: torch.nn.Module, path: Path, data_parallel: bool = False) -> Path:
    state = model.state_dict()
    if data_parallel:
        state = {f"module.{key}": value for key, value in state.items()}
    torch.save(state, path)
    return path


def test_transposed_conv_weight_gives_the_same_map():
    torch.manual_seed(0)
    transposed = torch.nn.ConvTranspose2d(5, 7, 3, 1, 1)
    conv = torch.nn.Conv2d(5, 7, 3, 1, 1)
    with torch.no_grad():
        conv.weight.copy_(authors.transposed_to_conv_weight(transposed.weight))
        conv.bias.copy_(transposed.bias)
    x = torch.randn(2, 5, 6, 6)
    torch.testing.assert_close(conv(x), transposed(x), rtol=1e-5, atol=1e-5)


def test_autoencoder_matches_the_authors(tmp_path):
    reference = randomize(AuthorsAutoencoder(DIM, WIDTH), seed=1)
    model = authors.load_authors_autoencoder(_save(reference, tmp_path / "ae.pth"))
    assert (model.arch.dim, model.arch.width) == (DIM, WIDTH)
    spec = torch.rand(4, 1, 128, 100) * 2 - 1
    with torch.no_grad():
        embedding = model.encode(spec)
        torch.testing.assert_close(embedding, reference.encode(spec), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            model.decoder(embedding), reference.decode(embedding), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("data_parallel", [False, True])
def test_generator_matches_the_authors_with_and_without_mc_dropout(tmp_path, data_parallel):
    reference = randomize(AuthorsGenerator(DIM, WIDTH), seed=2)
    path = _save(reference, tmp_path / "g.pth", data_parallel)
    # float64: the dense layers sum in another order than the transposed convs, and through 25 random
    # layers a float32 rounding can flip a ReLU; in float64 the two must agree to 1e-7.
    reference.double()
    x = torch.rand(3, DIM, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        model = authors.load_authors_generator(path, mc_dropout=False).double()
        torch.testing.assert_close(model(x), reference(x), rtol=1e-7, atol=1e-7)
        # MC dropout, as the authors' test script runs it (dropout modules in train mode): same masks.
        model.mc_dropout = True
        for module in reference.modules():
            if isinstance(module, torch.nn.Dropout2d):
                module.train()
        torch.manual_seed(7)
        ours = model(x)
        torch.manual_seed(7)
        theirs = reference(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-7)
    assert not torch.allclose(ours, model(x)), "MC dropout must make repeated translations differ"


def test_discriminator_matches_the_authors(tmp_path):
    reference = randomize(AuthorsDiscriminator(DIM, WIDTH), seed=3)
    model = authors.load_authors_discriminator(_save(reference, tmp_path / "d.pth"))
    assert model.dim == DIM
    images, embedding = torch.rand(4, 3, 96, 96) * 2 - 1, torch.rand(4, DIM) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            model(images, embedding), reference(images, embedding), rtol=1e-5, atol=1e-5
        )


def test_classifier_matches_the_authors_and_keeps_their_dropout(tmp_path):
    reference = randomize(AuthorsClassifier(width=1.0), seed=4)
    model = authors.load_authors_classifier(_save(reference, tmp_path / "c1.pth"))
    images = torch.rand(5, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images), rtol=1e-5, atol=1e-5)
    assert model.arch.rates() == authors.CLASSIFIER_DROPOUT
    # fc1 is in the file but not in the forward: changing it changes nothing.
    with torch.no_grad():
        reference.fc1.weight.add_(1.0)
    again = authors.load_authors_classifier(_save(reference, tmp_path / "c1b.pth"))
    with torch.no_grad():
        torch.testing.assert_close(again(images), model(images))


@pytest.mark.parametrize(
    ("kind", "dim", "reference", "loader"),
    [
        ("autoencoder", 512, lambda: AuthorsAutoencoder(512), "load_authors_autoencoder"),
        ("autoencoder", 128, lambda: AuthorsAutoencoder(128), "load_authors_autoencoder"),
        ("autoencoder", 2048, lambda: AuthorsAutoencoder(2048), "load_authors_autoencoder"),
        ("generator", 512, lambda: AuthorsGenerator(512), "load_authors_generator"),
        ("discriminator", 512, lambda: AuthorsDiscriminator(512), "load_authors_discriminator"),
        ("classifier", None, lambda: AuthorsClassifier(), "load_authors_classifier"),
    ],
)
def test_full_width_shapes_map_and_match_the_released_file_sizes(kind, dim, reference, loader):
    """At full width (on the meta device: shapes only), every key of the authors' layout maps onto the
    project's network, and the state dict's float32 bytes account for the released file's size."""
    with torch.device("meta"):
        theirs = reference()
        state = theirs.state_dict()
        converted = authors.convert_state_dict(state, kind, f"<{kind}>")
        ours = {
            "autoencoder": lambda: __import__("s2i_models").AudioAutoencoder(dim),
            "generator": lambda: __import__("s2i_models").DenseGenerator(dim),
            "discriminator": lambda: __import__("s2i_models").Discriminator(dim),
            "classifier": lambda: __import__("s2i_models").InformativityClassifier(),
        }[kind]()
    own = ours.state_dict()
    assert set(own) == set(converted)
    assert all(tuple(own[k].shape) == tuple(v.shape) for k, v in converted.items())
    tensor_bytes = sum(v.numel() * v.element_size() for v in state.values())
    released = RELEASED_BYTES[(kind, dim)]
    overhead = released - tensor_bytes
    assert 0 < overhead < 200 * len(state) + 2000, (kind, dim, released, tensor_bytes)
    assert parameter_count(theirs) <= parameter_count(ours) + 32 * 32 + 32 * 3  # only fc1 is left out


def test_lfs_pointer_names_the_file_and_the_fix(tmp_path):
    pointer = tmp_path / "net_visual_interpret_model_C1_(test_2_R2_epoch_165).pth"
    pointer.write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:f6f5492b6bafe65984a1db9bc8cdf941900ba66ea1ed28484855faf403915e91\nsize 148610\n"
    )
    with pytest.raises(authors.AuthorsModelError, match=r"Git LFS pointer.*git lfs pull") as error:
        authors.load_authors_classifier(pointer)
    assert str(pointer) in str(error.value)


def test_shape_mismatch_names_the_file_the_key_and_both_shapes(tmp_path):
    reference = AuthorsGenerator(DIM, WIDTH)
    state = reference.state_dict()
    state["convT5.weight"] = torch.zeros(7, 7, 3, 3)
    path = tmp_path / "g.pth"
    torch.save(state, path)
    with pytest.raises(authors.AuthorsModelError) as error:
        authors.load_authors_generator(path)
    message = str(error.value)
    assert str(path) in message and "convT5.weight" in message and "(7, 7, 3, 3)" in message
    assert "expects" in message


def test_wrong_kind_of_file_and_missing_keys_are_named(tmp_path):
    classifier = _save(AuthorsClassifier(), tmp_path / "c.pth")
    with pytest.raises(authors.AuthorsModelError, match="transition0.weight"):
        authors.load_authors_generator(classifier)
    state = AuthorsClassifier().state_dict()
    del state["fc3.bias"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(authors.AuthorsModelError, match=r"lacks fc3\.bias"):
        authors.load_authors_classifier(tmp_path / "short.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a zip")
    with pytest.raises(authors.AuthorsModelError, match="cannot be read"):
        authors.load_authors_classifier(tmp_path / "junk.pth")


def test_released_folder_lookup(tmp_path):
    with pytest.raises(authors.AuthorsModelError, match="not a folder"):
        authors.authors_file(tmp_path / "nowhere", "generator", 512)
    with pytest.raises(authors.AuthorsModelError, match="sizes \\[512\\] only"):
        authors.authors_file(tmp_path, "generator", 256)
    with pytest.raises(authors.AuthorsModelError, match="missing from"):
        authors.authors_file(tmp_path, "autoencoder", 512)
    for file_name in authors.CLASSIFIER_FILES:
        _save(randomize(AuthorsClassifier(width=0.5)), tmp_path / file_name)
    judges = authors.load_authors_classifiers(tmp_path, ["dog", "water_flowing"])
    assert set(judges) == {"dog", "water_flowing"}
    assert authors.epoch_of(authors.GENERATOR_FILES[512]) == 3679
