"""Model5 — at most 4,000 parameters (3,892), aiming at 99.4%.

Target:
- At most 4,000 parameters (moonshot: 3,000).
- Model3's target: test accuracy of 99.4% or more in at least 3 of the last 5 of 15 epochs, on at least
  18 of 20 seeds.

Where the parameters go:
| block | layers | parameters | output | RF |
|---|---|---|---|---|
| block1 | 3x3 conv 1 -> 8, batch norm, ReLU | 72 + 16 = 88 | 8 x 26 x 26 | 3 |
| block2 | 3x3 conv 8 -> 12, batch norm, ReLU | 864 + 24 = 888 | 12 x 24 x 24 | 5 |
| transition | 1x1 conv 12 -> 8, 2x2 max-pool | 96 | 8 x 12 x 12 | 6 |
| block3 | 3x3 conv 8 -> 20 in two groups (4 -> 10 each), batch norm, ReLU | 720 + 40 = 760 | 20 x 10 x 10 | 10 |
| block4 | 3x3 depthwise 20, 1x1 conv 20 -> 20, batch norm, ReLU | 180 + 400 + 40 = 620 | 20 x 8 x 8 | 14 |
| block5 | the same | 620 | 20 x 6 x 6 | 18 |
| block6 | the same, padded | 620 | 20 x 6 x 6 | 22 |
| head | 6x6 average pool, 1x1 conv 20 -> 10 | 200 | 10 | 32 |
| total | | 3,892 | | |

The receptive field at the output is 32 pixels: the whole 28 x 28 digit.

Design:
Model4 with its block2 made separable. Model4 spends 888 of its 4,612 parameters in block2, a full 3x3
convolution from 8 to 12 channels on the 24 x 24 map; a depthwise 3x3 and a 1x1 do the same job for 192
(and a fifth of the multiply-accumulates there), which keeps what Model4's design history found
matters most, 20 channels after the pool, within 4,000.

Recipe:
Model4's, as it is (SGD, momentum 0.83, peak lr 0.88, batch 64, weight decay 1.5e-4, the published
augmentation, on a one-cycle schedule): the rate rises from lr / 25 to lr over the first 3 epochs,
falls along a cosine to lr x 0.003 at the end of epoch 12, and holds there for the last three
epochs - the three the target needs, at the rate Model4's former StepLR recipe ended at (lr x 0.147^3)
and on the training images as they are, without the rotations and jitter (`clean_epochs=3`). The
schedule was chosen here first, against the StepLR recipe Model4 had then; Model4 took it afterwards,
chosen again on its own validation seeds (its notes).

Tried and dropped (validation split, mean over epochs 10-14 of seeds 1-5, against this design on
Model4's former StepLR recipe; records and commits in results/tuning/model5-design, the table there):
- Model4 at 16 channels after the pool (3,712 parameters): one seed in Model4's design, 0.14 points
  under Model4 - the width after the pool is where the accuracy is.
- Model4 at 10 channels in block2 and 18 after the pool (3,986): behind this design on each of the five
  seeds, by 0.09 points on the mean and 0.06 on the worst seed. Narrowing the back costs more than a
  full block2 gives.
- Model4 without block6, full block2 kept (3,992, receptive field 28): 0.03 under this design on the mean
  and 0.05 on the worst seed, ahead on two seeds of five - the depth after the pool is worth about as much
  as the full block2.
- This design without augmentation: training accuracy rose above validation accuracy and validation fell
  by 0.05 - even at this size the rotations regularise.
- This design with the rate cut every 5 epochs instead of 4: a tie (the same mean, within a hundredth).
- A separable block2 to 16 channels and the transition from 16 (3,988): 0.08 under this design on the
  mean, 0.06 on the worst seed - the last 84 parameters buy nothing before the pool.
- This design with the pool after block3 (3,916, 2.4 times the multiply-accumulates): unsteady at the
  recipe's rate and behind on every seed, 0.13 under on the mean; at half the rate 0.10 under.
- This design with batch 32 at half the rate: 0.04 under on the mean.
- This design with weight decay 1e-4: 0.10 under, behind on every seed; with 2e-4, 0.07 under - the
  recipe's 1.5e-4 lies between two lower scores.
- Towards the 3,000 moonshot, this design at 16 channels after the pool (3,016): 0.16 under, behind on
  every seed.
- Model4's former StepLR recipe (the rate times 0.147 every 4 epochs), this design's until the one-cycle: on
  ten validation seeds 99.260 ± 0.065 by the window mean, 99.267 (worst 99.15) by the target's statistic,
  the third-best of the last five epochs; on the test set 9 of 20 seeds (results/README.md, its own row).
- One-cycle over all 15 epochs: the best last epoch of any candidate (99.364 against 99.272, ten seeds),
  but epochs 10 and 11 still start at 0.4 and 0.3 of the peak rate, and the target's statistic tied
  (99.262, worst 99.14).
- The same with a moving average of the weights: the averaged network fell to 97.6-98.7% in epochs
  10-13 - batch-norm statistics averaged alongside weights that moved fast do not fit the averaged
  weights; stopped after three seeds.
- The one-cycle over 12 epochs with augmentation to the end (the recipe before the clean epochs): on ten
  validation seeds 99.316 ± 0.049 by the target's statistic, worst 99.25; on the test set 17 of 20 seeds.
- The cycle over 13 epochs instead of 12 (one more epoch at useful rates, two at the floor): 99.326 ±
  0.033, worst 99.27 over ten seeds - past that recipe too, and 0.002 under the clean epochs on the mean,
  which the rule written before the runs made the decider: a tie between the two.
- A shorter rise, over 15% of the cycle instead of 25%: 99.322 ± 0.089 over five seeds, worst 99.19 - a
  wider spread; stopped at five seeds.

Why it works:
- Before the pool the network finds strokes and edges, 8 to 12 channels of them; a depthwise 3x3 per
  channel followed by a 1x1 mix loses little against a full 3x3 there (the design table: a few
  hundredths of a point on validation), while narrowing the blocks after the pool loses more.
- After the pool, where the digit's parts are combined, the 20 channels and Model4's three separable
  blocks are kept whole.
- The schedule: annealing the rate smoothly to a small floor fits the augmented images better than
  StepLR's drops do (training accuracy 99.35% against 99.22%), and ending the anneal at epoch 12 makes
  the last three epochs - the three of five the target asks for - the annealed network, still training
  at a small rate. On validation seeds 1-10 the target's statistic rose from 99.267 ± 0.059 to
  99.316 ± 0.049 and the worst seed from 99.15 to 99.25 (permutation test of the means p = 0.07; ahead
  on 7 seeds of 10). On the test set it met the target on 17 of 20 seeds against StepLR's 9 (results/
  README.md): as many as Model3 with half its parameters, the three misses within 0.05 points of the line.
- The clean epochs: after the anneal the network has learnt what the rotations and jitter teach; three
  epochs at the floor on the images as they are let its weights and batch-norm statistics settle on the
  undistorted digits it is tested on. On validation seeds 1-10 the target's statistic rose from 99.316 to
  99.328 (worst 99.25 to 99.26; p = 0.62, ahead on six seeds, tied on three): chosen by the rule, but a
  tie at this noise, as the test set confirmed - 17 of 20 again, the same three seeds missing.
- It works near its capacity (training accuracy on augmented images about its validation accuracy,
  99.35% against 99.33% at the last epoch): less regularisation (weight decay 1e-4, no augmentation)
  and more (2e-4) each scored lower.
"""
from torch import nn

# Model4's recipe and search space as they are: only the network differs.
from models.model4 import RECIPE, Model4, search_space  # noqa: F401
from records import Target

TARGET = Target(99.40, hits=3, window=5)  # Model3's target, with half its parameters


class Model5(Model4):
    """Model4 with block3 in two groups."""

    def __init__(self, width: int = 20) -> None:
        super().__init__(width)
        # Each half of the transition's 8 channels makes half of the 20; block4's 1x1 mixes the halves.
        self.block3 = nn.Sequential(nn.Conv2d(8, width, 3, groups=2, bias=False),
                                    nn.BatchNorm2d(width), nn.ReLU())  # 10x10, RF 10
