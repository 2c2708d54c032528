"""The test images a checkpoint gets wrong: computed once from a run's best.pt, then read from its JSON."""
import json
from pathlib import Path

import torch

import models
from data.loaders import TensorLoader, mnist_dataset, test_transform
from data.mnist import ensure_mnist, resolve_data_dir
from core.files import atomic_write_bytes
from report.tables import RecordedRun, ReportError

MISCLASSIFIED_FILE = "misclassified.json"


def misclassified(run: RecordedRun, data_dir: str | Path | None) -> list[dict]:
    """The best checkpoint's wrong test predictions, as [{index, label, predicted}]: kept beside the run once found."""
    saved = run.folder / MISCLASSIFIED_FILE
    if saved.exists():
        return json.loads(saved.read_text())
    data_dir = resolve_data_dir(data_dir)
    ensure_mnist(data_dir, log=lambda line: None)
    checkpoint = run.folder / "best.pt"
    if not checkpoint.exists():
        raise ReportError(f"{run.folder}: neither {MISCLASSIFIED_FILE} nor best.pt to find misclassified images")
    model = models.get_model(run.record.model)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    images = mnist_dataset(data_dir, False, test_transform())
    test = TensorLoader(images.data, images.targets, 1000, shuffle=False, augment=False, device=torch.device("cpu"),
                        seed=0)
    wrong, offset = [], 0
    with torch.inference_mode():
        for images, labels in test:
            predictions = model(images).argmax(dim=1)
            for index in (predictions != labels).nonzero().flatten().tolist():
                wrong.append({"index": offset + index, "label": int(labels[index]), "predicted": int(predictions[index])})
            offset += len(labels)
    atomic_write_bytes(saved, (json.dumps(wrong, indent=1) + "\n").encode())
    return wrong


def test_images(data_dir: str | Path | None) -> tuple[Path, torch.Tensor]:
    """MNIST's verified folder and its 10,000 test images as a uint8 tensor."""
    from torchvision import datasets

    directory = resolve_data_dir(data_dir)
    ensure_mnist(directory, log=lambda line: None)
    return directory, datasets.MNIST(str(directory), train=False).data
