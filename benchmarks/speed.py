"""Training speed of Model3: the published per-image pipeline against the in-memory tensor pipeline.

    python benchmarks/speed.py            # about 3 minutes on a 2-core CPU
    python benchmarks/speed.py --quick    # about 1 minute

Both pipelines train on the same fixed subset of MNIST training images, in one process, after a
warm-up. (a) is the published setup on a CPU: batch 64, ColorJitter + RandomRotation per PIL
image through a DataLoader, nn.Dropout. (b) is this package's default: batch 128 (the recipe's),
data as one tensor, augmentation on whole batches, the geometric-gap dropout. Throughputs are
medians of repeated passes. GFLOP/s counts a training step as 3x the forward multiply-accumulates
(forward, plus backward for inputs and for weights) at 2 FLOPs each.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from data.loaders import TensorLoader, mnist_datasets  # noqa: E402
from data.mnist import ensure_mnist, resolve_data_dir  # noqa: E402
from run_experiments import machine_description  # noqa: E402
from training.dropout import use_fast_dropout  # noqa: E402
from utils import layer_geometry, seed_everything  # noqa: E402


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def make_model(fast_dropout: bool, channels_last: bool = False) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = models.get_model("model3")
    if fast_dropout:
        use_fast_dropout(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(), torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def train_step(model, optimizer, images, labels) -> None:
    optimizer.zero_grad(set_to_none=True)
    F.nll_loss(model(images), labels).backward()
    optimizer.step()


def images_per_second(run_pass, images: int, repeats: int) -> float:
    run_pass()  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_pass()
        rates.append(images / (time.perf_counter() - started))
    return statistics.median(rates)


def training_pass(model, optimizer, loader):
    def run():
        for images, labels in loader:
            train_step(model, optimizer, images, labels)
    return run


def loading_pass(loader):
    def run():
        for _ in loader:
            pass
    return run


def compute_pass(model, optimizer, batches, channels_last: bool = False):
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]

    def run():
        for images, labels in batches:
            train_step(model, optimizer, images, labels)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller subset, fewer repeats, no torch.compile")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    subset, repeats = (4096, 2) if args.quick else (10_000, 5)

    data_dir = resolve_data_dir(args.data_dir)
    ensure_mnist(data_dir, log=lambda line: None)
    seed_everything(0)
    published_set, _ = mnist_datasets(data_dir, augment=True)
    published_loader = DataLoader(Subset(published_set, range(subset)), batch_size=64, shuffle=True)
    tensor_loader = TensorLoader(published_set.data[:subset], published_set.targets[:subset], 128, True, True,
                                 torch.device("cpu"), seed=0)
    macs = sum(row.macs for row in layer_geometry(models.get_model("model3")))
    ceiling = matmul_gflops()

    print(f"Machine: {machine_description()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
          f"subset {subset:,} images. Run it on an otherwise idle machine: other processes skew every figure.")
    # (a) and (b) alternate, so a machine whose speed drifts (a shared VM) biases neither.
    passes = {"a": training_pass(*make_model(False), published_loader), "b": training_pass(*make_model(True), tensor_loader)}
    rates = {"a": [], "b": []}
    for _ in range(repeats):
        for key, run_pass in passes.items():
            rates[key].append(images_per_second(run_pass, subset, 1))
    published, ours = statistics.median(rates["a"]), statistics.median(rates["b"])
    ratio = statistics.median(b / a for a, b in zip(rates["a"], rates["b"]))

    rows = [("(a) published: batch 64, per-image PIL transforms, nn.Dropout", published),
            ("(b) ours: batch 128, tensor pipeline, batch augmentation, fast dropout", ours)]
    print("\n| training, Model3 | images/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print(f"\nSpeed-up b/a: {ratio:.2f}x (median of {repeats} interleaved pairs: "
          + ", ".join(f"{b / a:.2f}" for a, b in zip(rates["a"], rates["b"])) + ")")
    print(f"Achieved by (b): {3 * 2 * macs * ours / 1e9:.1f} GFLOP/s of model arithmetic "
          f"({macs:,} MACs per image forward); matrix-multiply ceiling measured here: {ceiling:.1f} GFLOP/s")

    fixed_64 = [(torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))) for _ in range(subset // 64)]
    fixed_128 = [(torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))) for _ in range(subset // 128)]
    epoch = len(published_set)
    scale = epoch / subset
    split = [
        ("(a) data loading alone: per-image PIL transforms, batch 64", loading_pass(published_loader)),
        ("(a) compute alone: batch 64, nn.Dropout", compute_pass(*make_model(False), fixed_64)),
        ("(b) data loading alone: tensor slices + batch augmentation, batch 128", loading_pass(tensor_loader)),
        ("(b) compute alone: batch 128, fast dropout", compute_pass(*make_model(True), fixed_128)),
    ]
    print(f"\n| one {epoch:,}-image epoch, split (from the subset's rate) | seconds |\n|---|---|")
    for name, run in split:
        print(f"| {name} | {subset * scale / images_per_second(run, subset, repeats):.1f} |")

    variants = [
        ("batch 128, nn.Dropout", compute_pass(*make_model(False), fixed_128)),
        ("batch 128, fast dropout (kept)", compute_pass(*make_model(True), fixed_128)),
        ("batch 128, fast dropout, channels_last", compute_pass(*make_model(True, channels_last=True), fixed_128, True)),
    ]
    if not args.quick:
        # The fast dropout's data-dependent mask size would only break the graph: compile with nn.Dropout.
        compiled, optimizer = make_model(False)
        compiled_model = torch.compile(compiled)
        started = time.perf_counter()
        train_step(compiled_model, optimizer, *fixed_128[0])
        warm_up = time.perf_counter() - started
        variants.append((f"batch 128, nn.Dropout, torch.compile (warm-up {warm_up:.0f} s)",
                         compute_pass(compiled_model, optimizer, fixed_128)))
    print("\n| compute variants, Model3 training step | images/s |\n|---|---|")
    for name, run in variants:
        print(f"| {name} | {images_per_second(run, len(fixed_128) * 128, repeats):,.0f} |")
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        rate = images_per_second(compute_pass(*make_model(True), fixed_128), len(fixed_128) * 128, repeats)
        print(f"| batch 128, fast dropout, 1 thread instead of {threads} | {rate:,.0f} |")
        torch.set_num_threads(threads)

    model = models.get_model("model3").eval()
    test_images = torch.randn(10_000, 1, 28, 28)
    print("\n| evaluation, 10,000 images | images/s |\n|---|---|")
    for batch in (128, 1000):
        def run_eval(batch=batch):
            with torch.inference_mode():
                for start in range(0, len(test_images), batch):
                    model(test_images[start:start + batch])
        print(f"| inference_mode, batch {batch} | {images_per_second(run_eval, len(test_images), repeats):,.0f} |")


if __name__ == "__main__":
    main()
