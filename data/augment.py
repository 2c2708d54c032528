"""The published augmentation, done on whole batches of (N, 1, H, W) pixel images in [0, 1].

Matches torchvision's ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1) and
RandomRotation((-7, 7), fill=1) on MNIST's grayscale PIL images: saturation and hue leave a
grayscale image unchanged, and `fill=1` is pixel value 1 of 255, not white.
"""
import math

import torch
import torch.nn.functional as F

ROTATION_DEGREES = 7.0
ROTATION_FILL = 1 / 255
BRIGHTNESS = 0.1
CONTRAST = 0.1


def uniform(n: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.empty(n, 1, 1, 1, device=like.device).uniform_(low, high, generator=generator)


def adjust_brightness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return (images * factors).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    means = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images * factors + means * (1 - factors)).clamp_(0, 1)


def color_jitter(images: torch.Tensor, brightness: float = BRIGHTNESS, contrast: float = CONTRAST,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Per image: brightness and contrast factors from [1 - b, 1 + b] and [1 - c, 1 + c], applied in random order."""
    n = images.shape[0]
    brightness_factors = uniform(n, 1 - brightness, 1 + brightness, images, generator)
    contrast_factors = uniform(n, 1 - contrast, 1 + contrast, images, generator)
    brightness_first = uniform(n, 0, 1, images, generator) < 0.5
    one_order = adjust_contrast(adjust_brightness(images, brightness_factors), contrast_factors)
    other_order = adjust_brightness(adjust_contrast(images, contrast_factors), brightness_factors)
    return torch.where(brightness_first, one_order, other_order)


def rotate(images: torch.Tensor, degrees: torch.Tensor, fill: float = ROTATION_FILL,
           mode: str = "nearest") -> torch.Tensor:
    """Rotate each image counter-clockwise by its angle about the centre, as PIL's Image.rotate does."""
    radians = degrees.to(images.device, images.dtype) * (math.pi / 180)
    cos, sin = radians.cos(), radians.sin()
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # grid_sample pads with zeros: shift so the padding lands on `fill`.
    return F.grid_sample(images - fill, grid, mode=mode, padding_mode="zeros", align_corners=False) + fill


def random_rotation(images: torch.Tensor, max_degrees: float = ROTATION_DEGREES,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    angles = uniform(images.shape[0], -max_degrees, max_degrees, images, generator).flatten()
    return rotate(images, angles)


def augment_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """ColorJitter then RandomRotation, in the published order."""
    return random_rotation(color_jitter(images, generator=generator), generator=generator)
