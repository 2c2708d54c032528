"""Model3 — under 8k parameters, 99.4% test accuracy within 15 epochs (7,944 parameters).

Target:
- Fewer than 8k parameters.
- Test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs.
- Published (one run, GPU, batch 128): best test accuracy 99.46%, with a StepLR schedule and more
  augmentation than Model2.

Design:
Model2's blocks at 10-16 channels: two 3x3 blocks, a 1x1 convolution and a max-pool as the
transition, three 3x3 blocks on the 12x12 map, then global average pooling and a 1x1 convolution to
the ten classes. Every block is convolution, batch norm, ReLU; one Dropout(0.05) follows each block.
The receptive field at the output is 28 pixels, the whole digit.

Recipe:
SGD with momentum, with the settings a recipe search found on the validation split (trial 15 of
results/tuning/model3-tune: lr 0.88, momentum 0.83, batch 64), ColorJitter + RandomRotation(±7°)
augmentation, weight decay 1.5e-4 (Model4's, confirmed on validation in results/tuning/model3-confirm)
and Model4's one-cycle schedule: the rate rises from lr / 25 to lr over the first 3 epochs, falls
along a cosine to lr x 0.003 at the end of epoch 12 and holds there for the last three epochs, which
train on the images as they are (`clean_epochs=3`). The schedule replaced StepLR (the rate times 0.147
every 4 epochs; `--recipe step` trains it). How each step was chosen, and against what, is in
results/tuning/README.md. The published recipe (lr 0.5, momentum 0.9, no weight decay, StepLR every 6
epochs by 0.1, batch 128) is `--recipe published`; each named recipe's runs are their own rows.

Why these settings:
- Weight decay matters with batch norm: the convolutions feed batch norm, so their scale does not
  change the output. Without weight decay their norms grow under a large learning rate and the
  effective step shrinks by itself, leaving the schedule little to anneal; a little weight decay
  keeps the effective step, and the gain shows once the rate falls.
- The schedule: annealing smoothly to a small floor by epoch 12 makes the last three epochs - the
  three of five the target asks for - the annealed network, and training them on undistorted images
  settles its weights and batch-norm statistics on digits like the test set's. It was chosen for
  Model4 and then measured here against StepLR over validation seeds 1-10, by a rule written before
  the runs: the target's statistic (the third-best of the last five epochs) rose from 99.313 ± 0.035
  to 99.379 ± 0.056, the worst seed from 99.26 to 99.29 (permutation test p = 0.006, ahead on 7
  seeds of 10). On the test set it met the target on 20 of 20 seeds against StepLR's 17 of 20
  (results/README.md, each its own row); two of the 20 held it with no margin (99.40 exactly in
  three of their last five epochs).
- The published recipe (`--recipe published`) over test seeds 1-20 (compiled, on the CPU, at 505b7a3)
  met the target on 10 of 20 (95% interval 30-70%): test mean over epochs 10-14 99.39 ± 0.04, worst
  seed 99.33, best epochs 99.42 ± 0.04 - the published single run's best, 99.46%, was a good seed, not
  an unusual one. The default recipe on the same test seeds: 20 of 20, 99.46 ± 0.04 (permutation test
  of the two sets of window means p < 0.001). Both rows are on the results page.
- Tried over validation seeds 1-10 under StepLR and not kept (records and figures in
  results/tuning/model3-method): a moving average of the weights (`--ema-decay 0.999`) and random
  shifts and zooms (`--translate 0.1 --scale 0.1`) tied the method of the time; label smoothing
  (`--label-smoothing 0.1`) and a longer tail at small rates (`--step-size 3`) lost to it. The shifts,
  the smoothing and the tail each cost training accuracy: at this size the network is short of
  capacity, and anything that regularises or anneals sooner takes from what it can fit.
- "3 of the last 5 at 99.40%" is close to this model's noise: a tenth of a point is 10 test images,
  and the target sits about one seed-to-seed standard deviation below the mean, so the honest claim
  is a rate over many seeds, not "every seed". Compiled and eager steps round differently and draw
  other dropout masks: each seed follows another trajectory, so the two are separate rows.
"""
import torch.nn.functional as F
from torch import nn

from models.blocks import conv_bn_relu
from models.recipes import ONE_CYCLE, STEP
from records import Target
from settings import SGDRecipe

RECIPE = ONE_CYCLE  # see the notes: chosen on validation against `step`, the recipe it replaced
RECIPES = {
    # The published project's Model3: StepLR every 6 epochs by 0.1 from lr 0.5, batch 128, no weight decay.
    "published": SGDRecipe(epochs=15, batch_size=128, lr=0.5, momentum=0.9, weight_decay=0.0, step_size=6,
                           gamma=0.1, augment=True),
    "step": STEP,
}
TARGET = Target(99.40, hits=3, window=5)  # the published target: 99.4% held over the last epochs


class Model3(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.05)  # one module, applied after every block
        self.block1 = conv_bn_relu(1, 10)                          # 26x26, RF 3
        self.block2 = conv_bn_relu(10, 15)                         # 24x24, RF 5
        self.transition = nn.Sequential(nn.Conv2d(15, 10, 1, bias=False),
                                        nn.MaxPool2d(2))           # 12x12, RF 6
        self.block3 = conv_bn_relu(10, 16)                         # 10x10, RF 10
        self.block4 = conv_bn_relu(16, 16)                         # 8x8,   RF 14
        self.block5 = conv_bn_relu(16, 16)                         # 6x6,   RF 18
        self.head = nn.Sequential(nn.AvgPool2d(6),                 # 1x1,   RF 28
                                  nn.Conv2d(16, 10, 1, bias=False))

    def forward(self, x):
        x = self.dropout(self.block2(self.dropout(self.block1(x))))
        x = self.transition(x)
        x = self.dropout(self.block5(self.dropout(self.block4(self.dropout(self.block3(x))))))
        return F.log_softmax(self.head(x).flatten(1), dim=1)
