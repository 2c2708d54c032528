"""The published augmentation, done on whole batches of (N, 1, H, W) pixel images in [0, 1].

Matches torchvision's ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1) and
RandomRotation((-7, 7), fill=1) on MNIST's grayscale PIL images: saturation and hue leave a
grayscale image unchanged, and `fill=1` is pixel value 1 of 255, not white. A recipe may add random
shifts and zooms (`translate`, `scale`), as torchvision's RandomAffine draws them: the rotation, shift
and zoom are then one resampling, as RandomAffine(degrees=7, translate, scale) does.

The random choices (`Draws`) are made a training batch at a time, in the order the batch's images
would make them, and applied to several batches in one pass (`augment_batches`): the same pixels as
batch by batch, in fewer calls into PyTorch (benchmarks/speed.py times the loader alone).
"""
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

ROTATION_DEGREES = 7.0
ROTATION_FILL = 1 / 255
BRIGHTNESS = 0.1
CONTRAST = 0.1


def uniform(n: int, low: float, high: float, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.empty(n, 1, 1, 1, device=device).uniform_(low, high, generator=generator)


@dataclass(frozen=True)
class Draws:
    """Each image's random choices: brightness and contrast factors, their order, a rotation angle."""
    brightness: torch.Tensor       # (N, 1, 1, 1), from [1 - b, 1 + b]
    contrast: torch.Tensor         # (N, 1, 1, 1), from [1 - c, 1 + c]
    brightness_first: torch.Tensor  # (N, 1, 1, 1) bool: ColorJitter applies its two in random order
    degrees: torch.Tensor          # (N,), from [-max_degrees, max_degrees]
    shifts: torch.Tensor | None = None  # (N, 2) whole pixels (x right, y down), up to `translate` of the size
    scales: torch.Tensor | None = None  # (N,), from [1 - scale, 1 + scale]

    @classmethod
    def draw(cls, n: int, device: torch.device, generator: torch.Generator | None = None,
             brightness: float = BRIGHTNESS, contrast: float = CONTRAST, max_degrees: float = ROTATION_DEGREES,
             translate: float = 0.0, scale: float = 0.0, size: int = 28) -> "Draws":
        """The published draws first, in their order, then shifts and zooms where asked: without them the
        generator advances exactly as it always has, so earlier runs reproduce."""
        published = (uniform(n, 1 - brightness, 1 + brightness, device, generator),
                     uniform(n, 1 - contrast, 1 + contrast, device, generator),
                     uniform(n, 0, 1, device, generator) < 0.5,
                     uniform(n, -max_degrees, max_degrees, device, generator).flatten())
        most = translate * size  # torchvision's RandomAffine: a whole-pixel shift up to this far each way
        shifts = (torch.empty(n, 2, device=device).uniform_(-most, most, generator=generator).round_()
                  if translate else None)
        scales = uniform(n, 1 - scale, 1 + scale, device, generator).flatten() if scale else None
        return cls(*published, shifts, scales)

    @classmethod
    def cat(cls, parts: list["Draws"]) -> "Draws":
        return cls(*(None if getattr(parts[0], f.name) is None else torch.cat([getattr(part, f.name) for part in parts])
                     for f in fields(cls)))


def adjust_brightness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return (images * factors).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    means = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images * factors + means * (1 - factors)).clamp_(0, 1)


def color_jitter(images: torch.Tensor, draws: Draws) -> torch.Tensor:
    one_order = adjust_contrast(adjust_brightness(images, draws.brightness), draws.contrast)
    other_order = adjust_brightness(adjust_contrast(images, draws.contrast), draws.brightness)
    return torch.where(draws.brightness_first, one_order, other_order)


def coordinates(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Pixel centres in [-1, 1] as F.affine_grid computes them (align_corners=False), rounding included."""
    return torch.linspace(-1, 1, size, dtype=dtype, device=device) * (size - 1) / size


def rotation_grid(degrees: torch.Tensor, height: int, width: int, shifts: torch.Tensor | None = None,
                  scales: torch.Tensor | None = None) -> torch.Tensor:
    """F.affine_grid's (N, H, W, 2) sampling grid for rotations about the centre, to the bit (tests/test_augment.py),
    without its batched matrix multiply: that multiply, one tiny product per image, was half the loader's time.
    With `shifts` (pixels) and `scales`, each output pixel samples the input where the shift and zoom came from."""
    radians = (degrees * (math.pi / 180)).view(-1, 1, 1)
    cos, sin = radians.cos(), radians.sin()
    x = coordinates(width, degrees.dtype, degrees.device).view(1, 1, width)
    y = coordinates(height, degrees.dtype, degrees.device).view(1, height, 1)
    if shifts is not None:  # a shift of d pixels is 2d/size in grid units
        x = x - (2 / width) * shifts[:, 0].view(-1, 1, 1)
        y = y - (2 / height) * shifts[:, 1].view(-1, 1, 1)
    if scales is not None:
        x, y = x / scales.view(-1, 1, 1), y / scales.view(-1, 1, 1)
    return torch.stack([x * cos + y * -sin, x * sin + y * cos], dim=-1)


def rotate(images: torch.Tensor, degrees: torch.Tensor, fill: float = ROTATION_FILL, mode: str = "nearest",
           shifts: torch.Tensor | None = None, scales: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate each image counter-clockwise by its angle about the centre, as PIL's Image.rotate does (and shift
    and zoom it, where given, in the same resampling)."""
    to = dict(device=images.device, dtype=images.dtype)
    grid = rotation_grid(degrees.to(**to), images.shape[2], images.shape[3],
                         None if shifts is None else shifts.to(**to), None if scales is None else scales.to(**to))
    # grid_sample pads with zeros: shift so the padding lands on `fill`.
    return F.grid_sample(images - fill, grid, mode=mode, padding_mode="zeros", align_corners=False) + fill


def augment(images: torch.Tensor, draws: Draws) -> torch.Tensor:
    """ColorJitter then RandomRotation (with the shift and zoom, where drawn), in the published order."""
    return rotate(color_jitter(images, draws), draws.degrees, shifts=draws.shifts, scales=draws.scales)


def augment_batches(images: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
                    translate: float = 0.0, scale: float = 0.0) -> torch.Tensor:
    """`images` as consecutive training batches of `batch_size`, each augmented with its own draws."""
    return augment(images, Draws.cat([Draws.draw(len(batch), images.device, generator, translate=translate,
                                                 scale=scale, size=images.shape[-1])
                                      for batch in images.split(batch_size)]))
