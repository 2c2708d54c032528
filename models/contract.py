"""What a model file promises, checked once when a run is planned, before anything trains.

The class named after the file builds; its forward takes a batch of images and returns one row of ten
log-probabilities per image. The check is one forward pass on two images, in eval mode, on the CPU, with the
random generators left as they were, so it changes nothing a run then does.

    from models.contract import check_model
    check_model("model6")   # a ModelFileError, one line in the user's words, for the first breach found
"""
import functools

import torch

from models import entry
from models.errors import ModelFileError, raised_in, shown_path
from utils import CLASSES, IMAGE_SHAPE

CHECKED_IMAGES = 2
# How far a row of probabilities may sum from 1 in float32 before it is not log_softmax's output.
PROBABILITY_SUM_TOLERANCE = 1e-3


def shape_text(shape: torch.Size | tuple[int, ...]) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def output_breach(output: object) -> str | None:
    """What is wrong with a forward's output on CHECKED_IMAGES images, in the user's words; None if nothing."""
    expected = shape_text((CHECKED_IMAGES, CLASSES))
    if not isinstance(output, torch.Tensor):
        return f"forward returned {type(output).__name__}; expected a tensor {expected} of log-probabilities"
    if tuple(output.shape) != (CHECKED_IMAGES, CLASSES):
        hint = ("flatten before log_softmax" if output.numel() == CHECKED_IMAGES * CLASSES and output.shape[0] ==
                CHECKED_IMAGES else "one row of 10 class scores per image")
        return f"forward returned {shape_text(output.shape)}; expected {expected}: {hint}"
    if not output.is_floating_point() or not torch.isfinite(output).all():
        return f"forward returned {output.dtype} values that are not all finite; expected log-probabilities"
    sums = output.double().exp().sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=PROBABILITY_SUM_TOLERANCE):
        shown = " and ".join(f"{value:.3g}" for value in sums.tolist())
        return (f"forward returned scores whose probabilities sum to {shown}, not 1; expected log-probabilities: "
                "end forward with F.log_softmax(x, dim=1)")
    return None


@functools.cache
def check_model(name: str) -> None:
    """The model file keeps the contract (see the module's docstring), or a ModelFileError says how it does not."""
    model = entry(name)  # reading it checks its recipes and target
    images = torch.randn(CHECKED_IMAGES, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        try:
            network = model.network().eval()
            with torch.no_grad():
                output = network(images)
        except Exception as error:  # the user's own code: named with its line in the file
            raise raised_in(model.name, model.path, error) from None
    breach = output_breach(output)
    if breach:
        raise ModelFileError(f"{model.name}: {breach} ({shown_path(model.path)})")
