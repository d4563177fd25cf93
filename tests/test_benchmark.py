"""The benchmark's arithmetic: what it counts as a training FLOP, and whose memory it measures."""

import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.run import timed, training_flops_per_sample
from tests.helpers import make_params


def test_convolution_and_dense_flops_are_counted_per_sample():
    params = make_params(
        **{
            "model.type": "cnn",
            "model.conv_filters": [32, 64],
            "model.kernel_size": 3,
            "model.padding": "valid",
        },
        **{"model.hidden_units": [128], "model.pool_size": 2},
    )
    convolutions = 3 * 3 * 1 * 32 * 26 * 26 + 3 * 3 * 32 * 64 * 11 * 11  # 28 -> 26, pooled 13 -> 11
    dense = 6 * 6 * 64 * 128 + 128 * 10  # 11 pooled (padding) -> 6
    assert training_flops_per_sample(params) == 3 * 2 * (convolutions + dense)


def test_a_commands_peak_memory_is_its_own_not_the_benchmarks(tmp_path):
    held = np.ones(300 * 2**20, dtype=np.uint8)  # 300 MB resident in the benchmark's process
    allocate = "import numpy as np; np.ones(100 * 2**20, dtype=np.uint8)"
    _, peak_mb, _ = timed([sys.executable, "-c", allocate], Path(tmp_path), dict(os.environ))
    assert 100 <= peak_mb < 250, peak_mb
    assert held.sum() == held.size
