"""Distillation (Hinton, Vinyals and Dean, 2015): a student trained on a teacher's softened outputs as well as on
the labels. The teacher is a finished run's network, loaded from its final state (never from best.pt, which
evaluation chose), and runs in eval mode without gradients.

    teacher = Teacher(load_final_weights(models.get_model("model4"), run_dir, device), temperature=4, share=0.5)
    loss = teacher.blend(label_loss, student_log_probabilities, teacher(images))
"""
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.checkpoint import load_state

AVERAGED_PREFIX = "module."  # torch.optim.swa_utils.AveragedModel's names for the averaged network's tensors


def softened_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher's softened distribution || student's), times the temperature squared so that its gradients keep
    their size as the temperature changes. Both take log-probabilities: they are logits up to a constant per row,
    which the softmax removes, so dividing them by the temperature softens exactly as dividing the logits does."""
    soft_student = F.log_softmax(student / temperature, dim=1)
    soft_teacher = F.log_softmax(teacher / temperature, dim=1)
    return F.kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True) * temperature ** 2


@dataclass
class Teacher:
    network: nn.Module  # in eval mode, its parameters frozen
    temperature: float
    share: float  # of the loss on the softened outputs; the rest on the labels

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.network(images)

    def blend(self, label_loss: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return (1 - self.share) * label_loss + self.share * softened_loss(student, teacher.float(), self.temperature)


def load_final_weights(network: nn.Module, run_dir: Path, device: torch.device) -> nn.Module:
    """`network` with the weights a run ended with (its state.pt, loaded with weights_only=True): the averaged weights
    where its method kept an average (what it evaluated), else the model's; in eval mode, frozen, on `device`."""
    state = load_state(run_dir)
    weights = ({name.removeprefix(AVERAGED_PREFIX): value for name, value in state.average.items()
                if name.startswith(AVERAGED_PREFIX)} if state.average else state.model)
    network.load_state_dict(weights)
    return network.to(device).eval().requires_grad_(False)
