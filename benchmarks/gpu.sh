#!/usr/bin/env bash
# Every GPU figure of the speed page, in one go on one CUDA GPU (about 8 minutes on an H100-class GPU):
# steps as eager, compiled, reduce-overhead and one CUDA graph; the published pipeline and the default
# 15-epoch Model3 run back to back; 20 test seeds side by side (runs a minute, and how often they meet the
# target); then the test suite on CUDA.
#
#   bash benchmarks/gpu.sh OUT_DIR                                   # where CUDA and MNIST are set up
#   source .gpu/setup.sh && bash benchmarks/gpu.sh "$OUT"            # on the lent GPU machine (see the README)
set -u
out=${1:?give an output folder}
mkdir -p "$out"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA here'" || exit 2
timeout -s TERM 270 python3 benchmarks/speed.py --out "$out/speed" 2>&1 | tee "$out/speed.log"
timeout -s TERM 200 python3 -m pytest -q -x -p no:cacheprovider 2>&1 | tail -40 > "$out/pytest.log"
tail -3 "$out/pytest.log"
