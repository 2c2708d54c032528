"""The tensor pipeline's batch augmentation against torchvision's per-image transforms."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torchvision import datasets

from data import loaders
from data.augment import Draws, adjust_contrast, augment, color_jitter, rotate, rotation_grid
from data.loaders import TensorLoader, make_loaders, normalize
from experiment.provenance import machine_description
from tests.conftest import loader_config


@pytest.fixture(scope="module")
def digits(mnist_dir):
    dataset = datasets.MNIST(str(mnist_dir), train=True)
    return [dataset[i][0] for i in range(64)]


@pytest.mark.parametrize("angle", [7.0, -7.0, 3.3])
def test_batch_rotation_matches_pil(digits, angle):
    """Both use nearest-neighbour sampling about the same centre, so pixels agree except at exact ties
    (a sample point on a pixel boundary rounds one way in PIL and the other in grid_sample): allow at
    most 0.5% of pixels to differ. Rotating the wrong way, or about another centre, differs in ~10%."""
    reference = torch.stack([TF.to_tensor(TF.rotate(image, angle, fill=1)) for image in digits])
    batch = torch.stack([TF.to_tensor(image) for image in digits])
    rotated = rotate(batch, torch.full((len(digits),), angle))
    differs = ((rotated - reference).abs() > 0.5 / 255).float().mean().item()
    assert differs < 0.005
    assert rotated.min().item() >= 0 and rotated[:, :, 0, 0].allclose(torch.tensor(1 / 255))
    wrong_way = rotate(batch, torch.full((len(digits),), -angle))
    assert ((wrong_way - reference).abs() > 0.5 / 255).float().mean().item() > 0.02


def rotation_grids(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The elementwise grid and F.affine_grid's, for 5,000 angles within the published 7 degrees."""
    degrees = torch.empty(5000).uniform_(-7, 7, generator=torch.Generator().manual_seed(0))
    radians = degrees * (math.pi / 180)
    cos, sin, zeros = radians.cos(), radians.sin(), torch.zeros(5000)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    return rotation_grid(degrees, height, width), F.affine_grid(theta, [5000, 1, height, width], align_corners=False)


@pytest.mark.parametrize("height,width", [(28, 28), (20, 31)])
def test_rotation_grid_is_affine_grids_up_to_rounding(height, width):
    grid, expected = rotation_grids(height, width)
    assert torch.allclose(grid, expected, rtol=0, atol=1e-6)


@pytest.mark.skipif("AMD EPYC" not in machine_description(),
                    reason="bit equality with affine_grid's matrix product is pinned where the records were made "
                           "(AMD EPYC, torch 2.11 and 2.14); another CPU's product may round otherwise")
@pytest.mark.parametrize("height,width", [(28, 28), (20, 31)])
def test_rotation_grid_is_affine_grids_to_the_bit(height, width):
    """Where the committed records were made, the elementwise grid samples exactly the pixels F.affine_grid's
    would, so runs from before it reproduce (an H100 machine's CPU rounds the matrix product otherwise)."""
    grid, expected = rotation_grids(height, width)
    assert torch.equal(grid, expected)


def test_brightness_factors_span_the_published_range():
    flat = torch.full((4000, 1, 4, 4), 0.5)
    factors = color_jitter(flat, Draws.draw(4000, flat.device, torch.Generator().manual_seed(0)))[:, 0, 0, 0] / 0.5
    assert factors.min() >= 0.9 - 1e-6 and factors.max() <= 1.1 + 1e-6
    assert factors.min() < 0.91 and factors.max() > 1.09


def test_contrast_factors_span_the_published_range():
    halves = torch.full((4000, 1, 2, 2), 0.3)
    halves[:, :, 0] = 0.7
    jittered = color_jitter(halves, Draws.draw(4000, halves.device, torch.Generator().manual_seed(0), brightness=0.0))
    factors = (jittered[:, 0, 0, 0] - jittered[:, 0, 1, 0]) / 0.4
    assert factors.min() >= 0.9 - 1e-6 and factors.max() <= 1.1 + 1e-6
    assert factors.min() < 0.91 and factors.max() > 1.09
    assert torch.allclose(adjust_contrast(halves, torch.ones(4000, 1, 1, 1)), halves)


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_augmented_together_equal_batches_augmented_one_by_one(monkeypatch, mnist_dir, shuffle):
    """The loader augments chunks of batches in one pass; each batch must still get the draws it would
    get alone, in turn, to the bit (so runs reproduce across the change). Chunks of 3 batches of 16
    over 250 images: chunk ends, and a last batch of 10, fall inside the set."""
    monkeypatch.setattr(loaders, "BATCHES_PER_CHUNK", 3)
    images = datasets.MNIST(str(mnist_dir), train=True).data[:250]
    loader = TensorLoader(images, torch.arange(250), 16, shuffle, True, torch.device("cpu"), seed=5)
    pixels = images.float().div(255).unsqueeze(1)
    order = torch.randperm(250, generator=torch.Generator().manual_seed(5)) if shuffle else torch.arange(250)
    generator = torch.Generator().manual_seed(5)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [16] * 15 + [10]
    for (batch, labels), picked in zip(batches, order.split(16)):
        expected = normalize(augment(pixels[picked], Draws.draw(len(picked), pixels.device, generator)))
        assert torch.equal(labels, picked) and torch.equal(batch, expected)


def test_pipelines_agree_on_shapes_dtypes_and_labels_without_shuffle(mnist_dir):
    def batches(pipeline, augmented):
        settings = loader_config(50, 50, augmented, loader=pipeline, limit_train=200, limit_test=100)
        train, test = make_loaders(mnist_dir, settings, torch.device("cpu"), shuffle_train=False)
        return list(train), list(test)

    for augmented in (False, True):
        (tensor_train, tensor_test), (tv_train, tv_test) = batches("tensor", augmented), batches("torchvision", augmented)
        for (x1, y1), (x2, y2) in zip(tensor_train + tensor_test, tv_train + tv_test):
            assert x1.shape == x2.shape == (50, 1, 28, 28) and x1.dtype == x2.dtype == torch.float32
            assert y1.dtype == y2.dtype == torch.int64 and torch.equal(y1, y2)
        if not augmented:
            assert all(torch.allclose(a[0], b[0], atol=1e-5) for a, b in zip(tensor_train, tv_train))


def test_batch_shift_and_zoom_match_torchvisions_affine(digits):
    """Random shifts and zooms (--translate, --scale) in one resampling with the rotation, as RandomAffine does:
    torchvision's affine turns clockwise, PIL's rotate (and ours) counter-clockwise, hence the minus."""
    generator = torch.Generator().manual_seed(0)
    draws = Draws.draw(len(digits), torch.device("cpu"), generator, translate=0.1, scale=0.1)
    assert draws.shifts.abs().max() <= 3 and torch.equal(draws.shifts, draws.shifts.round())  # 0.1 of 28: 2.8
    assert draws.shifts.abs().max() > 1 and 0.9 <= draws.scales.min() and draws.scales.max() <= 1.1
    batch = torch.stack([TF.to_tensor(image) for image in digits])
    ours = rotate(batch, draws.degrees, shifts=draws.shifts, scales=draws.scales)

    def reference(shift_sign: int) -> torch.Tensor:
        return torch.stack([TF.to_tensor(TF.affine(image, angle=-float(angle), translate=[shift_sign * int(dx),
                                                                                          shift_sign * int(dy)],
                                                   scale=float(zoom), shear=[0.0, 0.0], fill=1,
                                                   interpolation=TF.InterpolationMode.NEAREST))
                            for image, angle, (dx, dy), zoom in zip(digits, draws.degrees, draws.shifts, draws.scales)])

    differs = lambda expected: ((ours - expected).abs() > 0.5 / 255).float().mean().item()  # noqa: E731
    assert differs(reference(1)) < 0.005 and differs(reference(-1)) > 0.02


def test_shifts_and_zooms_are_drawn_after_the_published_draws():
    """Without them the generator advances as it always has (earlier runs reproduce); with them the published
    draws are still the same numbers."""
    plain = Draws.draw(100, torch.device("cpu"), torch.Generator().manual_seed(3))
    more = Draws.draw(100, torch.device("cpu"), torch.Generator().manual_seed(3), translate=0.1, scale=0.1)
    assert plain.shifts is None and plain.scales is None
    for name in ("brightness", "contrast", "brightness_first", "degrees"):
        assert torch.equal(getattr(plain, name), getattr(more, name))
    assert torch.equal(Draws.cat([more, more]).shifts, torch.cat([more.shifts, more.shifts]))
