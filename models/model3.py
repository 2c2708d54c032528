"""Model3 — under 8k parameters, 99.4% test accuracy within 15 epochs (7,944 parameters).

Target:
- Fewer than 8k parameters.
- Test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs, for every seed.

Published results (one run, GPU, batch 128):
- Parameters: 7,944; best train accuracy 99.25%; best test accuracy 99.46%.
- A StepLR schedule and more augmentation were introduced; tuning the learning rate put test
  accuracy at or above 99.4% in the last 7 epochs.

Recipe:
SGD with momentum and StepLR, as published, with the settings the recipe search found (trial 15
of results/tuning/model3-tune): lr 0.88, momentum 0.83, batch 64, the rate multiplied by 0.147
every 4 epochs; ColorJitter + RandomRotation(±7°) augmentation; and weight decay 1.5e-4, where
trial 15 had 6.1e-5, taken from Model4's design and confirmed on validation. The published
recipe (lr 0.5, momentum 0.9, no weight decay, StepLR every 6 epochs by 0.1, batch 128) is
`PUBLISHED_RECIPE`; the README's table shows its runs as their own rows.

How the recipe was chosen:
On the validation split: trained on the first 50,000 training images, scored on the other 10,000.
- A 20-trial search within SGD + StepLR (`--tune`, seed 1, 2026-11-24): trial 15 scored 99.348%
  (mean validation accuracy over epochs 10-14), the hand-tuned recipe's neighbourhood (lr 0.5, weight
  decay 1e-4, StepLR(6, 0.1), batch 128) 99.23%. One seed per trial, and the seeds of one recipe
  spread by about 0.1 point, so the top of that ranking needed more seeds.
- The same score over seeds 1-3 (`--validation --seeds 1 2 3`; records in results/tuning/model3-confirm):
  trial 15 99.348 / 99.212 / 99.282, mean 99.281; the hand-tuned recipe (lr 0.5, weight decay 1e-4,
  the file's recipe until then) 99.242 / 99.310 / 99.280, mean 99.277. By the study's own score
  trial 15 is ahead, by 0.004 points: a tie within the seed noise (standard deviation 0.07 and 0.03).
  Trial 15 became the recipe because it is the search's choice and not worse on validation; the
  test-set runs below are its confirmation, not its selection. (One fact about the old recipe was
  already known from the test set: on this machine its seed 1 had missed the target.)
- Weight decay 1.5e-4 (`--validation --seeds 1 2 3 --weight-decay 1.5e-4`, commit 601a8ba):
  Model4's design found it better than 6.1e-5 on validation (99.309 against 99.245 over three
  seeds). On Model3, with the rule written down before the runs (adopt only if the mean beats
  99.281 and the worst seed beats trial 15's worst, 99.212): 99.382 / 99.360 / 99.290, mean
  99.344, worst 99.290. Adopted. (Known from the test set before: trial 15's seed 5 missed.)

Results on the test set:
Runs of 2026-11-24, trained on the full training set; every run's figures are in the README's table.
- This recipe as `python main.py` runs it now, with the training step compiled (the README's
  "model3 (compiled)"; commit e5c0ed2, `python main.py --models model3 --seeds 1`, then
  `--seeds 2 3 4 5`): 5, 5, 5, 5 and 4 of the last 5 epochs at 99.40% or more, so every seed
  meets the target; mean over the last 5 epochs 99.469 ± 0.025% (99.47, 99.48, 99.45, 99.50,
  99.44), best 99.47-99.54%, 3.1-4.3 minutes a run.
- The same recipe trained eagerly (before `--compile`; commit 342e739, made once, after the
  choice): 5, 2, 5, 4 and 5 of the last 5; 99.432 ± 0.029% (99.45, 99.39, 99.44, 99.42, 99.46),
  best 99.41-99.49%. Seed 2 misses: 99.37, 99.41, 99.38, 99.37, 99.40 - two to three test
  images short in three epochs.
- The two differ only in how the step is computed: compiled, the dropout masks are a different
  draw (a hash instead of geometric gaps, training/dropout.py) and the arithmetic rounds
  differently, so each seed follows another trajectory. The compiled runs average 0.04 points
  higher, about two standard errors of five seeds; Model4, which has no dropout and so differs
  only by rounding, moved by as much (+0.03). Read it as the spread of this recipe, not as a
  gain from compiling: over ten runs nine meet the target, and the one miss is two images short.
- Trial 15 as searched (weight decay 6.1e-5; the README's "model3 (weight_decay=6.08493e-05)"),
  seeds 1-5 (commit 3a1d41d): 5, 4, 5, 5 and 2 of the last 5; 99.436 ± 0.032% (99.43, 99.41,
  99.46, 99.47, 99.40); seed 5 misses: 99.45% at epoch 10, then 99.39, 99.39, 99.39, 99.40.
- The published recipe on this package's pipeline, seeds 1-3 (commit 4342b1d): 5, 0 and 5 of the
  last 5; mean 99.405 ± 0.089%. Its seed 2 ends at 99.26-99.34%. The searched recipes' seeds
  spread a third as much. (Its seed 1's 6.9 minutes include tests that shared the CPU.)
- So within SGD + StepLR: two recipes chosen on validation, the second 0.06 points ahead there,
  give the same eager test picture - a mean of 99.43-99.44% with a spread of 0.03, four seeds of
  five meeting the target and the fifth missing it by two or three images. The margin asked for (a
  mean of 99.42% or more) holds for both; "every seed" does not. The validation gain did not carry
  to the test set, which is what a 0.06-point difference over three seeds allows. At this size
  the target sits about one standard deviation below the seeds' mean, so one seed in five
  missing it is what the spread predicts; lifting the worst seed clear needs a higher mean, not a
  luckier recipe. Not tried, for want of time on this machine: a search scored on the worst seed,
  and longer training at the smallest rate.

Why these settings:
- Weight decay matters with batch norm: the convolutions feed batch norm, so their scale does not
  change the output. Without weight decay their norms grow under a large learning rate and the
  effective step shrinks by itself, leaving the StepLR drops little to anneal; a little weight decay
  keeps the effective step, and the gain shows after the drops.
- Batch 64 takes twice the steps per epoch of batch 128; with drops every 4 epochs the rate is
  0.88, 0.129, 0.019, then 0.0028 for the last 3 epochs, so the last 5 epochs of the target are
  spent at small, settled rates (the published schedule: 0.5, 0.05, then 0.005 from epoch 12).
- "3 of the last 5 at 99.40%" is close to this model's noise: a tenth of a point is 10 test
  images. The number of CPU threads changes the rounding and so the trajectory (see Run records).
"""
import torch.nn.functional as F
from torch import nn

from records import Target
from settings import SGDRecipe

# Trial 15 of the recipe search with Model4's weight decay, each step chosen on the validation split over seeds
# 1-3 (see the notes).
RECIPE = SGDRecipe(epochs=15, batch_size=64, lr=0.8801502858461098, momentum=0.8285934066041577,
                   weight_decay=1.5e-4, step_size=4, gamma=0.1466624901477834, augment=True)
# As published: the same schedule without weight decay. Kept so the report names the runs made with it.
PUBLISHED_RECIPE = SGDRecipe(epochs=15, batch_size=128, lr=0.5, momentum=0.9, weight_decay=0.0, step_size=6, gamma=0.1,
                             augment=True)
TARGET = Target(99.40, hits=3, window=5)  # the published target: 99.4% held over the last epochs


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


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
