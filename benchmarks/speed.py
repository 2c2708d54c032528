"""Training speed of Model3: the published per-image pipeline against this package's defaults.

    python benchmarks/speed.py            # about 6 minutes on a 2-core CPU (compiling its variants included)
    python benchmarks/speed.py --quick    # about 1 minute, without the compiled variants

On a GPU, benchmarks/gpu.py measures instead (steps, whole runs, seeds side by side).

Both pipelines train on the same fixed subset of MNIST training images, in one process, after a
warm-up (which also compiles). (a) is the published setup on a CPU: batch 64, ColorJitter +
RandomRotation per PIL image through a DataLoader, nn.Dropout. (b) is what `python main.py` runs
for Model3 here: its recipe's batch, data as one tensor, augmentation on whole batches, the fast
dropout, the training step compiled where `--compile auto` compiles. Throughputs are medians of
repeated passes, taken in turns. GFLOP/s counts a training step as 3x the forward
multiply-accumulates (forward, plus backward for inputs and for weights) at 2 FLOPs each.
"""
import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from data.loaders import TensorLoader, mnist_dataset, train_transform  # noqa: E402
from data.mnist import ensure_mnist, resolve_data_dir  # noqa: E402
from experiment.provenance import machine_description  # noqa: E402
from experiment.configs import config_for  # noqa: E402
from training.compiling import CompiledTraining, can_compile  # noqa: E402
from training.dropout import use_fast_dropout  # noqa: E402
from training.precision import Precision, native_bf16  # noqa: E402

from utils import layer_geometry, seed_everything  # noqa: E402

CPU = torch.device("cpu")
FP32, BF16 = Precision("fp32", CPU), Precision("bf16", CPU)
# What `python main.py --models model3` does on this machine: its recipe's batch, precision and compilation.
DEFAULT_CONFIG = config_for("model3", device="cpu")
BATCH = DEFAULT_CONFIG.recipe.batch_size
DEFAULT = Precision(DEFAULT_CONFIG.execution.precision, CPU)
DEFAULT_COMPILED = DEFAULT_CONFIG.execution.compiled


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def stream_gbps(elements: int = 1 << 25, repeats: int = 5) -> dict[str, float]:
    """Memory bandwidth as STREAM measures it: copy (a = b) and triad (a = b + s * c), best of `repeats`."""
    a, b, c = torch.empty(elements), torch.rand(elements), torch.rand(elements)
    kernels = {"copy": (lambda: a.copy_(b), 2), "triad": (lambda: torch.add(b, c, alpha=3.0, out=a), 3)}
    best = {}
    for name, (kernel, arrays) in kernels.items():
        kernel()
        seconds = min(timed(kernel) for _ in range(repeats))
        best[name] = arrays * 4 * elements / seconds / 1e9
    return best


def convolutions_pass(batches: int) -> Callable[[], None]:
    """Model3's convolutions alone, forward and backward, on the inputs they see at the default batch: the rate
    no fusion of the other layers can beat while oneDNN computes the convolutions."""
    model, inputs = models.get_model("model3"), []
    convolutions = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    hooks = [conv.register_forward_hook(lambda conv, args, output: inputs.append(args[0].shape))
             for conv in convolutions]
    model(torch.randn(BATCH, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    # The first layer's input is the images: no gradient flows back into them.
    tensors = [torch.randn(shape, requires_grad=index > 0) for index, shape in enumerate(inputs)]
    gradients = [torch.randn_like(conv(x)) for conv, x in zip(convolutions, tensors)]

    def run() -> None:
        for _ in range(batches):
            for conv, x, gradient in zip(convolutions, tensors, gradients):
                x.grad = conv.weight.grad = None  # as zero_grad(set_to_none=True): no accumulation
                conv(x).backward(gradient)
    return run


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def activation_elements(model: torch.nn.Module) -> int:
    """Values every layer writes for one image: a training step must at least write each once forward,
    read it back for the backward, and write and read its gradient."""
    return sum(math.prod(row.output_shape) for row in layer_geometry(model))


def make_model(fast_dropout: bool = True, compiled: bool = False, batch: int = BATCH, channels_last: bool = False,
               dropout: float | None = None) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Model3 ready to train: what the loop calls (the model, or its compiled step) and its optimizer."""
    model = models.get_model("model3")
    if dropout is not None:
        model.dropout.p = dropout
    if fast_dropout:
        use_fast_dropout(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step = CompiledTraining(model, batch) if compiled else model
    return step.train(), torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def train_step(model, optimizer, images, labels, precision: Precision | None = None) -> None:
    optimizer.zero_grad(set_to_none=True)
    with (precision or FP32).autocast():
        output = model(images)
    F.nll_loss(output.float(), labels).backward()
    optimizer.step()


def interleaved_rates(passes: dict[str, tuple[Callable[[], None], int]], rounds: int) -> dict[str, list[float]]:
    """Images/s of each (pass, images) in every round, after one warm-up pass each.

    The passes take turns, round after round, so a machine whose speed drifts (a shared VM)
    biases none of them.
    """
    for run_pass, _ in passes.values():
        run_pass()
    rates = {name: [] for name in passes}
    for _ in range(rounds):
        for name, (run_pass, images) in passes.items():
            started = time.perf_counter()
            run_pass()
            rates[name].append(images / (time.perf_counter() - started))
    return rates


def print_rates(title: str, rates: dict[str, list[float]]) -> None:
    print(f"\n| {title} | images/s |\n|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):,.0f} |")


def with_threads(threads: int, run_pass: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            run_pass()
        finally:
            torch.set_num_threads(previous)
    return run


def flushing_denormals(run_pass: Callable[[], None]) -> Callable[[], None]:
    """The pass with subnormal floats treated as zero (the CPU's slow path for tiny values skipped)."""
    def run() -> None:
        torch.set_flush_denormal(True)
        try:
            run_pass()
        finally:
            torch.set_flush_denormal(False)
    return run


def training_pass(model, optimizer, loader, precision: Precision | None = None):
    def run():
        for images, labels in loader:
            train_step(model, optimizer, images, labels, precision)
    return run


def loading_pass(loader):
    def run():
        for _ in loader:
            pass
    return run


def compute_pass(model, optimizer, batches, channels_last: bool = False, precision: Precision | None = None):
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]

    def run():
        for images, labels in batches:
            train_step(model, optimizer, images, labels, precision)
    return run


def fixed_batches(batch: int, images: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))) for _ in range(images // batch)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller subset, fewer repeats, fewer variants")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    subset, repeats = (4096, 2) if args.quick else (10_000, 5)

    data_dir = resolve_data_dir(args.data_dir)
    ensure_mnist(data_dir, log=lambda line: None)
    seed_everything(0)
    published_set = mnist_dataset(data_dir, True, train_transform(augment=True))
    published_loader = DataLoader(Subset(published_set, range(subset)), batch_size=64, shuffle=True)
    tensor_loader = TensorLoader(published_set.data[:subset], published_set.targets[:subset], BATCH, True, True,
                                 CPU, seed=0)
    model3 = models.get_model("model3")
    macs, activations = sum(row.macs for row in layer_geometry(model3)), activation_elements(model3)
    ceiling, bandwidth = matmul_gflops(), stream_gbps()
    default = f"batch {BATCH}, {DEFAULT.name}{', compiled' if DEFAULT_COMPILED else ''}"

    print(f"Machine: {machine_description()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
          f"native bf16: {'yes' if native_bf16(CPU) else 'no'}; subset {subset:,} images. Run it on an otherwise "
          "idle machine: other processes skew every figure.")
    rates = interleaved_rates({"a": (training_pass(*make_model(False), published_loader), subset),
                               "b": (training_pass(*make_model(compiled=DEFAULT_COMPILED), tensor_loader, DEFAULT),
                                     subset)}, repeats)
    published, ours = statistics.median(rates["a"]), statistics.median(rates["b"])
    ratios = [b / a for a, b in zip(rates["a"], rates["b"])]
    print("\n| training, Model3 | images/s |\n|---|---|")
    print(f"| (a) published: batch 64, per-image PIL transforms, nn.Dropout, fp32 | {published:,.0f} |")
    print(f"| (b) ours (the defaults): {default}, tensor loader, batch augmentation, fast dropout | {ours:,.0f} |")
    print(f"\nSpeed-up b/a: {statistics.median(ratios):.2f}x (median of {repeats} interleaved pairs: "
          + ", ".join(f"{ratio:.2f}" for ratio in ratios) + ")")

    value_bytes = 2 if DEFAULT.name == "bf16" else 4
    step_bytes = 4 * activations * value_bytes
    print("\n| roofline of (b) | ceiling measured here | (b) achieves | share |\n|---|---|---|---|")
    achieved = 3 * 2 * macs * ours / 1e9
    print(f"| arithmetic: 3 x {macs:,} MACs per image (forward, backward for inputs and for weights), 2 FLOPs each "
          f"| {ceiling:.0f} GFLOP/s (fp32 2048x2048 matrix multiply) | {achieved:.1f} GFLOP/s | {achieved / ceiling:.0%} |")
    convolutions = statistics.median(interleaved_rates(
        {"convolutions": (convolutions_pass(subset // BATCH), subset // BATCH * BATCH)}, repeats)["convolutions"])
    print(f"| convolutions: Model3's {sum(isinstance(m, torch.nn.Conv2d) for m in model3.modules())} convolutions "
          f"alone, forward and backward, batch {BATCH} (oneDNN at these channel counts) | {convolutions:,.0f} "
          f"images/s ({3 * 2 * macs * convolutions / 1e9:.0f} GFLOP/s) | {ours:,.0f} images/s | "
          f"{ours / convolutions:.0%} |")
    moved = step_bytes * ours / 1e9
    print(f"| memory: at least 4 passes over {activations:,} activation values per image ({value_bytes} bytes each: "
          f"written, read back, gradient written and read) | {bandwidth['triad']:.1f} GB/s (STREAM triad; copy "
          f"{bandwidth['copy']:.1f}) | {moved:.1f} GB/s | {moved / bandwidth['triad']:.0%} |")

    fixed_64, fixed_default = fixed_batches(64, subset), fixed_batches(BATCH, subset)
    real = [(images.clone(), labels.clone()) for images, labels in tensor_loader][:len(fixed_default)]
    epoch = len(published_set)
    split = interleaved_rates({
        "(a) data loading alone: per-image PIL transforms, batch 64": (loading_pass(published_loader), subset),
        "(a) compute alone: batch 64, nn.Dropout": (compute_pass(*make_model(False, batch=64), fixed_64),
                                                    len(fixed_64) * 64),
        f"(b) data loading alone: tensor slices + batch augmentation, batch {BATCH}": (loading_pass(tensor_loader),
                                                                                      subset),
        f"(b) compute alone on random tensors: {default}": (
            compute_pass(*make_model(compiled=DEFAULT_COMPILED), fixed_default, precision=DEFAULT),
            len(fixed_default) * BATCH),
        "(b) compute alone on real augmented batches, made beforehand": (
            compute_pass(*make_model(compiled=DEFAULT_COMPILED), real, precision=DEFAULT), len(real) * BATCH),
        "(b) compute alone on real augmented batches, denormals flushed to zero": (
            flushing_denormals(compute_pass(*make_model(compiled=DEFAULT_COMPILED), real, precision=DEFAULT)),
            len(real) * BATCH),
    }, repeats)
    print(f"\n| one {epoch:,}-image epoch, split (from the subset's rate) | seconds |\n|---|---|")
    for name, values in split.items():
        print(f"| {name} | {epoch / statistics.median(values):.1f} |")

    threads = torch.get_num_threads()
    fixed_double = fixed_batches(2 * BATCH, subset)
    variants = {
        f"batch {BATCH}, nn.Dropout": compute_pass(*make_model(False), fixed_default),
        f"batch {BATCH}, fast dropout": compute_pass(*make_model(), fixed_default),
        f"batch {BATCH}, fast dropout, bf16 autocast": compute_pass(*make_model(), fixed_default, precision=BF16),
        f"batch {BATCH}, fast dropout, channels_last": compute_pass(*make_model(channels_last=True), fixed_default,
                                                                   True),
    }
    if threads > 1:
        variants[f"batch {BATCH}, fast dropout, 1 thread instead of {threads}"] = with_threads(
            1, compute_pass(*make_model(), fixed_default))
    if not args.quick and can_compile(CPU):
        variants.update({
            f"batch {BATCH}, compiled, nn.Dropout (inductor's random numbers)": compute_pass(
                *make_model(False, compiled=True), fixed_default),
            f"batch {BATCH}, compiled, hashed dropout mask (the default)": compute_pass(
                *make_model(compiled=True), fixed_default),
            f"batch {BATCH}, compiled, hashed dropout mask, bf16 autocast": compute_pass(
                *make_model(compiled=True), fixed_default, precision=BF16),
            f"batch {BATCH}, compiled, no dropout (what the mask costs)": compute_pass(
                *make_model(compiled=True, dropout=0.0), fixed_default),
            f"batch {2 * BATCH}, compiled, hashed dropout mask": compute_pass(
                *make_model(compiled=True, batch=2 * BATCH), fixed_double),
        })
    variant_rates = interleaved_rates({name: (run, subset // BATCH * BATCH) for name, run in variants.items()}, repeats)
    print_rates("compute variants, Model3 training step", variant_rates)

    model = models.get_model("model3").eval()
    test_images = torch.randn(10_000, 1, 28, 28)

    def evaluation_pass(batch: int) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for start in range(0, len(test_images), batch):
                    model(test_images[start:start + batch])
        return run
    evaluation = interleaved_rates({f"inference_mode, batch {batch}": (evaluation_pass(batch), len(test_images))
                                    for batch in (128, 1000)}, repeats)
    print_rates("evaluation, 10,000 images", evaluation)


if __name__ == "__main__":
    main()
