"""Does the CIFAR recipe augment as the course's Keras layers do (flip, rotation, zoom; identity in eval mode),
score top-k correctly, hold out a disjoint seeded validation split and train deterministically? Tiny and offline:
nothing here downloads."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from autograder.exercises.vit import cifar_recipe as cr
from autograder.exercises.vit.cifar_recipe import CifarRecipe, load_cifar100, top_k_accuracy, train_cifar, validation_split
from autograder.data.augment import Augment, affine, flip_horizontal
from autograder.data.images import normalised_split


def batch(seed: int = 0, shape=(16, 3, 8, 8)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- augmentation ------------------------------------------------------------------------------------------------

def test_is_augment_the_identity_in_eval_mode():
    x = batch()
    augment = Augment(seed=0).eval()
    assert augment(x) is x


def test_does_flip_mirror_exactly_the_images_it_flips():
    x = batch()
    out = Augment(flip=True, rotation=0, zoom=0, seed=3).train()(x)
    flips = Augment(flip=True, rotation=0, zoom=0, seed=3).draw(len(x))[0]  # the same generator's draw
    assert 0 < int(flips.sum()) < len(x)  # this seed flips some images and not others
    for image, result, flipped in zip(x, out, flips):
        assert torch.equal(result, torch.flip(image, dims=[-1]) if flipped else image)
    assert torch.equal(flip_horizontal(x, flips), out)


def test_is_augment_without_flip_rotation_or_zoom_the_identity_in_train_mode():
    x = batch(shape=(5, 3, 32, 32))
    assert torch.allclose(Augment(flip=False, rotation=0, zoom=0, seed=0).train()(x), x, atol=1e-6)
    ones = torch.ones(5)
    assert torch.allclose(affine(x, torch.zeros(5), ones, ones), x, atol=1e-6)  # the resampling itself


def test_does_a_quarter_turn_equal_rot90_counter_clockwise():
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)  # (B, C, H, W)
    quarter = torch.full((2,), math.pi / 2)
    ones = torch.ones(2)
    assert torch.allclose(affine(x, quarter, ones, ones), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(affine(x, -quarter, ones, ones), torch.rot90(x, -1, dims=(-2, -1)), atol=1e-5)
    # a 4x6 image: pixel units, not normalised ones, so its central 4x4 square turns like a square image
    wide = batch(shape=(1, 2, 4, 6))
    turned = affine(wide, quarter[:1], ones[:1], ones[:1])
    assert torch.allclose(turned[..., 1:5], torch.rot90(wide[..., 1:5], 1, dims=(-2, -1)), atol=1e-5)


def test_does_zoom_scale_about_the_centre_and_reflect_at_the_edges():
    ramp = torch.arange(4.0).expand(1, 1, 4, 4)  # each row 0, 1, 2, 3 (x = column)
    zero, one = torch.zeros(1), torch.ones(1)
    zoomed_in = affine(ramp, zero, one, torch.tensor([0.5]))  # samples x_in = 0.5 (x - 1.5) + 1.5
    assert torch.allclose(zoomed_in, torch.tensor([0.75, 1.25, 1.75, 2.25]).expand(1, 1, 4, 4))
    zoomed_out = affine(ramp, zero, one, torch.tensor([2.0]))  # x_in = -1.5, 0.5, 2.5, 4.5
    # Keras' fill_mode="reflect" (d c b a | a b c d | d c b a): -1.5 -> 0.5 and 4.5 -> 2.5
    assert torch.allclose(zoomed_out, torch.tensor([0.5, 0.5, 2.5, 2.5]).expand(1, 1, 4, 4))
    assert torch.allclose(affine(ramp, zero, torch.tensor([0.5]), one), ramp)  # height only: rows are all alike


def test_does_the_same_seed_give_the_same_augmentation():
    x = batch(shape=(8, 3, 32, 32))
    first, second, other = Augment(seed=7).train(), Augment(seed=7).train(), Augment(seed=8).train()
    a = first(x)
    assert torch.equal(a, second(x)) and not torch.allclose(a, other(x))
    assert not torch.allclose(first(x), a)  # the next batch gets new transforms
    flips, angles, zooms_h, zooms_w = Augment(seed=7).draw(1000)
    assert angles.abs().max() <= 0.02 * 2 * math.pi and angles.abs().max() > 0.9 * 0.02 * 2 * math.pi
    assert ((zooms_h - 1).abs().max() <= 0.2) and not torch.equal(zooms_h, zooms_w)  # independent factors
    assert 400 < int(flips.sum()) < 600


# --- scores and the validation split ------------------------------------------------------------------------------

def test_does_top_k_accuracy_count_labels_among_the_k_largest_logits():
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.0],   # ranks 1, 2, 0, 3
                           [0.9, 0.0, 0.3, 0.2],   # ranks 0, 2, 3, 1
                           [0.0, 0.1, 0.2, 0.3]])  # ranks 3, 2, 1, 0
    labels = torch.tensor([1, 2, 0])
    assert top_k_accuracy(logits, labels, 1) == pytest.approx(1 / 3)  # only the first
    assert top_k_accuracy(logits, labels, 2) == pytest.approx(2 / 3)  # and the second
    assert top_k_accuracy(logits, labels, 3) == pytest.approx(2 / 3)
    assert top_k_accuracy(logits, labels, 4) == 1.0 and top_k_accuracy(logits, labels, 5) == 1.0
    with pytest.raises(ValueError):
        top_k_accuracy(logits, labels[:2], 1)


def test_is_the_validation_split_disjoint_seeded_and_stratified():
    labels = np.repeat(np.arange(4), 25)
    train, val = validation_split(labels, 0.2, seed=0)
    assert len(val) == 20 and len(train) == 80 and not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(100))
    assert np.bincount(labels[val]).tolist() == [5, 5, 5, 5]
    assert np.array_equal(validation_split(labels, 0.2, seed=0)[1], val)
    assert not np.array_equal(validation_split(labels, 0.2, seed=1)[1], val)
    assert len(validation_split(labels, 0.0, seed=0)[1]) == 0


def test_does_load_cifar100_download_only_when_asked(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cr, "download_cifar", lambda kind, root, progress=True: calls.append((kind, root)) or root)
    monkeypatch.setattr(cr, "read_cifar", lambda root, kind: ("read", kind))
    assert load_cifar100(tmp_path, download=True) == ("read", 100) and calls == [(100, tmp_path)]
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar100(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing fetched


# --- training -----------------------------------------------------------------------------------------------------

COLOURS = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]])


def colour_split(n_train: int = 64, n_test: int = 32, seed: int = 0):
    """32x32 RGB images whose class (4) is their colour, with noise: a linear model learns them in a few steps."""
    rng = np.random.default_rng(seed)

    def images(n):
        labels = np.arange(n) % 4
        noise = rng.integers(-25, 26, size=(n, 3, 32, 32))
        return np.clip(COLOURS[labels][:, :, None, None] + noise, 0, 255).astype(np.uint8), labels

    return normalised_split(*images(n_train), *images(n_test), max_value=255, name="colours",
                            classes=("red", "green", "blue", "yellow"))


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(3 * 32 * 32, 4))


RECIPE = CifarRecipe(batch_size=16, epochs=2, lr=1e-2, validation=0.125, seed=5)


@pytest.fixture(scope="module")
def trained():
    split = colour_split()
    model = linear_model()
    initial = copy.deepcopy(model.state_dict())
    history = train_cifar(model, split, RECIPE, progress=False)
    return split, model, initial, history


def test_does_train_cifar_record_each_epoch_and_score_the_test_split(trained):
    split, _, _, history = trained
    assert len(history.train_loss) == 2 and len(history.validation_top1) == 2
    assert all(math.isfinite(v) for v in history.train_loss)
    assert 0 <= history.test_top1 <= history.test_top5 <= 1
    assert history.test_top5 == 1.0  # 4 classes: every label is among the top 5
    assert history.test_top1 > 0.5  # the colours are easy
    val = history.validation_indices
    assert len(val) == 8 and np.array_equal(val, validation_split(split.y_train, 0.125, cr._seeds(5, 4)[0])[1])


def test_are_the_validation_images_held_out_of_training(trained, monkeypatch):
    split, _, _, history = trained
    val = set(history.validation_indices.tolist())
    seen = set()
    original = Augment.forward

    def record(self, x):  # the training batches pass through the augmentation first
        for image in x:
            seen.add(int(np.flatnonzero((split.x_train == image.numpy()).all(axis=(1, 2, 3)))[0]))
        return original(self, x)

    monkeypatch.setattr(Augment, "forward", record)
    train_cifar(linear_model(), split, RECIPE, progress=False)
    assert seen == set(range(64)) - val and len(seen) == 56


def test_is_train_cifar_deterministic_given_its_seed(trained):
    split, model, initial, history = trained
    rerun = linear_model()
    torch.rand(7)  # the global generator moves on: the recipe seeds dropout itself
    assert all(torch.equal(rerun.state_dict()[k], v) for k, v in initial.items())
    state = torch.random.get_rng_state()
    again = train_cifar(rerun, split, RECIPE, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's global generator is left as it was
    assert again.train_loss == history.train_loss and again.validation_top1 == history.validation_top1
    assert (again.test_top1, again.test_top5) == (history.test_top1, history.test_top5)
    assert all(torch.equal(rerun.state_dict()[k], v) for k, v in model.state_dict().items())
    other = train_cifar(linear_model(), split, CifarRecipe(batch_size=16, epochs=2, lr=1e-2, validation=0.125,
                                                           seed=6), progress=False)
    assert other.train_loss != history.train_loss
