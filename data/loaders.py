"""Train and test loaders for MNIST, in two interchangeable pipelines.

- "tensor" (default): the whole set lives on the training device as one tensor; batches are
  slices of a seeded permutation, augmented on the device a batch at a time.
- "torchvision": the published pipeline, per-image PIL transforms through a DataLoader. Use it
  to plug in your own torchvision transforms, and as the baseline the tensor pipeline is measured against.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from data.augment import augment_batch

MEAN, STD = 0.1307, 0.3081
LOADERS = ("tensor", "torchvision")


def train_transform(augment: bool) -> transforms.Compose:
    steps = [transforms.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1),
             transforms.RandomRotation((-7.0, 7.0), fill=1)] if augment else []
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])


def test_transform() -> transforms.Compose:
    return train_transform(augment=False)


def mnist_datasets(data_dir: Path, augment: bool) -> tuple[datasets.MNIST, datasets.MNIST]:
    """The verified raw files (see data.mnist.ensure_mnist) as torchvision datasets."""
    train = datasets.MNIST(str(data_dir), train=True, download=False, transform=train_transform(augment))
    test = datasets.MNIST(str(data_dir), train=False, download=False, transform=test_transform())
    return train, test


class TensorLoader:
    """Batches of (normalised images, labels) from tensors kept on the training device."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 augment: bool, device: torch.device, seed: int) -> None:
        # Augmentation works in pixel space (its clamps and fill are defined there), so only
        # un-augmented sets are stored normalised; augmented batches are normalised after.
        pixels = images.to(device=device, dtype=torch.float32).div_(255).unsqueeze(1)
        self.images = pixels if augment else normalize(pixels)
        self.labels = labels.to(device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.order_generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator(device=device).manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        order = torch.randperm(count, generator=self.order_generator).to(self.labels.device) if self.shuffle else None
        for start in range(0, count, self.batch_size):
            if order is None:
                images = self.images[start:start + self.batch_size]
                labels = self.labels[start:start + self.batch_size]
            else:
                picked = order[start:start + self.batch_size]
                images, labels = self.images[picked], self.labels[picked]
            if self.augment:
                images = normalize(augment_batch(images, self.augment_generator))
            yield images, labels


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - MEAN) / STD


@dataclass(frozen=True)
class LoaderSettings:
    batch_size: int
    test_batch_size: int
    augment: bool
    pipeline: str = "tensor"
    workers: int = 0
    seed: int = 1
    limit_train: int | None = None
    limit_test: int | None = None


def first(dataset, limit: int | None):
    return dataset if limit is None else Subset(dataset, range(min(limit, len(dataset))))


def make_loaders(data_dir: Path, settings: LoaderSettings, device: torch.device, shuffle_train: bool = True):
    """(train_loader, test_loader) for the chosen pipeline; both yield (images, labels) batches."""
    train_set, test_set = mnist_datasets(data_dir, settings.augment)
    if settings.pipeline == "tensor":
        def tensor_loader(dataset: datasets.MNIST, limit: int | None, batch_size: int, shuffle: bool, augment: bool):
            return TensorLoader(dataset.data[:limit], dataset.targets[:limit], batch_size, shuffle, augment,
                                device, settings.seed)
        return (tensor_loader(train_set, settings.limit_train, settings.batch_size, shuffle_train, settings.augment),
                tensor_loader(test_set, settings.limit_test, settings.test_batch_size, False, False))
    if settings.pipeline != "torchvision":
        raise ValueError(f"unknown loader {settings.pipeline!r}: choose one of {', '.join(LOADERS)}")
    options = dict(num_workers=settings.workers, pin_memory=device.type == "cuda",
                   persistent_workers=settings.workers > 0)
    train = DataLoader(first(train_set, settings.limit_train), batch_size=settings.batch_size, shuffle=shuffle_train,
                       generator=torch.Generator().manual_seed(settings.seed), **options)
    test = DataLoader(first(test_set, settings.limit_test), batch_size=settings.test_batch_size, shuffle=False, **options)
    return train, test
