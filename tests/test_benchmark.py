"""The benchmark's arithmetic: what it counts as a training FLOP."""

from benchmarks.run import training_flops_per_sample
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
