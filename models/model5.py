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
Model4 with block3 in two groups. Of Model4's 4,612 parameters, block3 (a full 3x3 convolution from
the transition's 8 channels to 20, 1,480) and block2 (a full 3x3 from 8 to 12 on the 24 x 24 map, 888)
are the largest. Grouping block3 in two - each group a 3x3 from 4 channels to 10 - halves it to 760 and
keeps the rest of Model4 whole: the full block2 and the 20 channels after the pool that Model4's design
history found matter most. Little is cut off: the transition's 1x1 just before learns what each half of
its 8 channels carries into its group, and block4's 1x1 just after mixes the two halves of 20 again.
Block3 also does half the multiply-accumulates it did.

Recipe:
Model4's, as it is (SGD, momentum 0.83, peak lr 0.88, batch 64, weight decay 1.5e-4, the published
augmentation, on a one-cycle schedule): the rate rises from lr / 25 to lr over the first 3 epochs,
falls along a cosine to lr x 0.003 at the end of epoch 12, and holds there for the last three
epochs - the three the target needs, at the rate Model4's former StepLR recipe ended at (lr x 0.147^3)
and on the training images as they are, without the rotations and jitter (`clean_epochs=3`). The
schedule was chosen on Model5's first network (design 1 below) against the StepLR recipe Model4 had
then; Model4 took it afterwards, chosen again on its own validation seeds (its notes).

Tried and dropped (validation split; every design a commit; records, commits and the full table in
results/tuning/README.md and results/tuning/model5-design). Design 1, Model5 until this design, was
Model4 with a separable block2 (a depthwise 3x3 and a 1x1, 192 parameters instead of 888: 3,916).
Against design 1 on Model4's former StepLR recipe, the mean over epochs 10-14 of seeds 1-5:
- Model4 at 16 channels after the pool (3,712 parameters): one seed in Model4's design, 0.14 points
  under Model4 - the width after the pool is where the accuracy is.
- Model4 at 10 channels in block2 and 18 after the pool (3,986): behind design 1 on each of the five
  seeds, by 0.09 points on the mean and 0.06 on the worst seed. Narrowing the back costs more than a
  full block2 gives.
- Model4 without block6, full block2 kept (3,992, receptive field 28): 0.03 under design 1 on the mean
  and 0.05 on the worst seed, ahead on two seeds of five - the depth after the pool is worth about as much
  as the full block2.
- Design 1 without augmentation: training accuracy rose above validation accuracy and validation fell
  by 0.05 - even at this size the rotations regularise.
- Design 1 with the rate cut every 5 epochs instead of 4: a tie (the same mean, within a hundredth).
- A separable block2 to 16 channels and the transition from 16 (3,988): 0.08 under design 1 on the
  mean, 0.06 on the worst seed - the last 84 parameters buy nothing before the pool.
- Design 1 with the pool after block3 (3,916, 2.4 times the multiply-accumulates): unsteady at the
  recipe's rate and behind on every seed, 0.13 under on the mean; at half the rate 0.10 under.
- Design 1 with batch 32 at half the rate: 0.04 under on the mean.
- Design 1 with weight decay 1e-4: 0.10 under, behind on every seed; with 2e-4, 0.07 under - the
  recipe's 1.5e-4 lies between two lower scores.
- Towards the 3,000 moonshot, design 1 at 16 channels after the pool (3,016): 0.16 under, behind on
  every seed.
Design 1's schedule, by the target's statistic (the third-best of the last five epochs), ten seeds:
- Model4's former StepLR recipe (the rate times 0.147 every 4 epochs): 99.267, worst 99.15; on the test
  set 9 of 20 seeds (two rows in the results, 13 seeds at one commit and 7 at the next).
- One-cycle over all 15 epochs: the best last epoch of any candidate (99.364 against 99.272), but epochs
  10 and 11 still start at 0.4 and 0.3 of the peak rate, and the target's statistic tied (99.262, worst
  99.14). With a moving average of the weights the averaged network fell to 97.6-98.7% in epochs 10-13
  (batch-norm statistics averaged alongside fast-moving weights do not fit the average); stopped at three
  seeds.
- One-cycle over 12 epochs, then held at the floor: 99.316 ± 0.049, worst 99.25; on the test set 17 of 20.
  Its variations tied with it: the cycle over 13 epochs (99.326 ± 0.033, worst 99.27), a shorter rise
  (99.322 ± 0.089 over five seeds, worst 99.19), and the clean last three epochs (99.328 ± 0.051, worst
  99.26), which the rule written before the runs chose - on the test set 17 of 20 again, the same three
  seeds missing by 0.01-0.04 points.
Against design 1 on this recipe, by the target's statistic (seeds 1-5: 99.332, worst 99.26):
- Design 1 with label smoothing 0.1: 99.308 ± 0.066, worst 99.20 - softer targets took accuracy from a
  network that has none to spare (training accuracy 99.41% against 99.50%).
- Model4's full block2 with a separable block3 and 23 channels after the pool (3,950): 99.324 ± 0.066,
  worst 99.23 - three more channels after the pool do not pay for a full block3.

Why it works:
- Both full 3x3 layers before and at the pool are kept: block2 finds strokes on the 24 x 24 map and
  block3 combines them into parts. Made separable, block2 lost 0.03 points of validation accuracy; made
  two groups, block3 loses almost nothing, because the 1x1 layers on each side of it choose what its
  groups see and mix what they make. On validation seeds 1-10 this design scored 99.357 ± 0.061 by the
  target's statistic, worst 99.26, against design 1's 99.328 ± 0.051 on the same recipe (permutation
  test p = 0.28, ahead on five seeds, tied on two), and Model4's 99.365 ± 0.052 (p = 0.78): a tie with
  Model4 at 720 parameters fewer.
- After the pool, where the digit's parts are combined, the 20 channels and Model4's three separable
  blocks are kept whole.
- The schedule: annealing the rate smoothly to a small floor fits the augmented images better than
  StepLR's drops do, and ending the anneal at epoch 12 makes the last three epochs - the three of five
  the target asks for - the annealed network, still training at a small rate; training them on the
  images as they are settles weights and batch-norm statistics on digits like the test set's.
- It works near its capacity (training accuracy on augmented images about its validation accuracy):
  less regularisation (weight decay 1e-4, no augmentation) and more (2e-4, label smoothing) each scored
  lower on design 1.
- On the test set (results/README.md) it met the target on 19 of 20 seeds (95% interval 76-99%), test
  mean over epochs 10-14 99.45 ± 0.04; the one miss, seed 20, stayed within 0.02 points of the line.
  Design 1 on the same recipe: 17 of 20 (99.44 ± 0.04), its own row there.
"""
from models.blocks import conv_bn_relu
# Model5 is built as Model4 and then changed, so its initialisation (and its committed runs) stay those of that order.
from models.model4 import Model4
from models.recipes import ONE_CYCLE, STEP, one_cycle_search_space
from records import Target

RECIPE = ONE_CYCLE  # Model4's recipes and search space as they are: only the network differs
RECIPES = {"step": STEP}
search_space = one_cycle_search_space

TARGET = Target(99.40, hits=3, window=5)  # Model3's target, with half its parameters


class Model5(Model4):
    """Model4 with block3 in two groups."""

    def __init__(self, width: int = 20) -> None:
        super().__init__(width)
        # Each half of the transition's 8 channels makes half of the 20; block4's 1x1 mixes the halves.
        self.block3 = conv_bn_relu(8, width, groups=2)  # 10x10, RF 10
