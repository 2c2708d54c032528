"""Train and test loaders for MNIST, in two interchangeable pipelines.

- "tensor" (default): the whole set lives on the training device as one tensor; batches are
  slices of a seeded permutation, augmented on the device eight batches at a time, each
  with its own random draws (data/augment.py).
- "torchvision": the published pipeline, per-image PIL transforms through a DataLoader. Use it
  to plug in your own torchvision transforms, and as the baseline the tensor pipeline is measured against.
"""
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from data.augment import augment_batches
from core.settings import ExperimentConfig

MEAN, STD = 0.1307, 0.3081
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000
# Batches gathered and augmented together: fewer calls into PyTorch, while each pass over the chunk
# (512 images at batch 64, 1.6 MB) stays in the CPU cache; more batches fall out of it.
BATCHES_PER_CHUNK = 8


def train_transform(augment: bool, translate: float = 0.0, scale: float = 0.0) -> transforms.Compose:
    geometry = (transforms.RandomAffine((-7.0, 7.0), translate=(translate, translate) if translate else None,
                                        scale=(1 - scale, 1 + scale) if scale else None, fill=1)
                if translate or scale else transforms.RandomRotation((-7.0, 7.0), fill=1))
    steps = [transforms.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1), geometry] if augment else []
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])


def test_transform() -> transforms.Compose:
    return train_transform(augment=False)


def mnist_dataset(data_dir: Path, train: bool, transform: transforms.Compose) -> datasets.MNIST:
    """The verified raw files (see data.mnist.ensure_mnist) as a torchvision dataset."""
    return datasets.MNIST(str(data_dir), train=train, download=False, transform=transform)


class TensorLoader:
    """Batches of (normalised images, labels) from tensors kept on the training device."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 augment: bool, device: torch.device, seed: int, translate: float = 0.0, scale: float = 0.0) -> None:
        # Augmentation works in pixel space (its clamps and fill are defined there), so only
        # un-augmented sets are stored normalised; augmented batches are normalised after.
        pixels = images.to(device=device, dtype=torch.float32).div_(255).unsqueeze(1)
        self.images = pixels if augment else normalize(pixels)
        self.normalized = not augment
        self.labels = labels.to(device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.translate, self.scale = translate, scale
        self.order_generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator(device=device).manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        order = torch.randperm(count, generator=self.order_generator).to(self.labels.device) if self.shuffle else None
        chunk = self.batch_size * BATCHES_PER_CHUNK
        for start in range(0, count, chunk):
            picked = slice(start, start + chunk) if order is None else order[start:start + chunk]
            images, labels = self.images[picked], self.labels[picked]
            if self.augment:
                images = augment_batches(images, self.batch_size, self.augment_generator, self.translate, self.scale)
            if not self.normalized:
                images = normalize(images)
            yield from zip(images.split(self.batch_size), labels.split(self.batch_size))


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - MEAN) / STD


def split_sizes(limit_train: int | None, limit_test: int | None, validation: bool) -> tuple[int, int]:
    """(training, evaluation) images: the first of each set, or, for validation, the training set (or its
    --limit-train subset) cut into its first five sixths and its last sixth (50,000 and 10,000 of 60,000)."""
    used = min(limit_train or TRAIN_IMAGES, TRAIN_IMAGES)
    if validation:
        return used - used // 6, used // 6
    return used, min(limit_test or TEST_IMAGES, TEST_IMAGES)


def split(config: ExperimentConfig) -> tuple[range, range]:
    """Training and evaluation indices (split_sizes); validation's held-out sixth follows the training images."""
    train, evaluation = split_sizes(config.limit_train, config.limit_test, config.validation)
    return range(train), range(train, train + evaluation) if config.validation else range(evaluation)


def stop_augmenting(loader) -> None:
    """Train on the images as they are from the loader's next epoch on (Recipe.clean_epochs)."""
    if isinstance(loader, TensorLoader):
        loader.augment = False
    else:
        loader.dataset.dataset.transform = test_transform()


def random_generators(loader) -> list[torch.Generator]:
    """The generators a loader draws its order and augmentation from: what a resumed run must restore."""
    if isinstance(loader, TensorLoader):
        return [loader.order_generator, loader.augment_generator]
    return [loader.generator] if getattr(loader, "generator", None) is not None else []


def make_loaders(data_dir: Path, config: ExperimentConfig, device: torch.device, shuffle_train: bool = True):
    """(train_loader, evaluation_loader) for the run's loader, batch sizes, augmentation and subset; both yield
    (images, labels) batches. The evaluation loader reads the test set, or with `config.validation` the held-out end
    of the training set."""
    recipe = config.recipe
    train_range, eval_range = split(config)
    train_set = mnist_dataset(data_dir, True, train_transform(recipe.augment, recipe.translate, recipe.scale))
    eval_set = mnist_dataset(data_dir, config.validation, test_transform())  # train=True: the held-out end
    test_batch_size = config.execution.test_batch_size
    if config.loader == "tensor":
        def tensor_loader(dataset: datasets.MNIST, indices: range, batch_size: int, shuffle: bool, augment: bool):
            chosen = slice(indices.start, indices.stop)
            return TensorLoader(dataset.data[chosen], dataset.targets[chosen], batch_size, shuffle, augment,
                                device, config.seed, recipe.translate, recipe.scale)
        return (tensor_loader(train_set, train_range, recipe.batch_size, shuffle_train, recipe.augment),
                tensor_loader(eval_set, eval_range, test_batch_size, False, False))
    options = dict(num_workers=config.workers, pin_memory=device.type == "cuda")
    keep_workers = config.workers > 0
    # Workers kept between epochs would keep the augmenting transform that stop_augmenting swaps out.
    train = DataLoader(Subset(train_set, train_range), batch_size=recipe.batch_size, shuffle=shuffle_train,
                       generator=torch.Generator().manual_seed(config.seed),
                       persistent_workers=keep_workers and not recipe.clean_epochs, **options)
    evaluation = DataLoader(Subset(eval_set, eval_range), batch_size=test_batch_size, shuffle=False,
                            persistent_workers=keep_workers, **options)
    return train, evaluation
