"""The pipeline's stage scripts and the modules they share."""

import os

# Before any stage imports TensorFlow: its C++ start-up chatter (CUDA probes, graph warnings)
# would bury the stage's own output. Python errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 or newer; on
# this AVX2 machine they made a CNN epoch 1.35x faster (32 s against 43 s). Inside XLA they
# made the compiled MLP step 2x slower, so XLA keeps its own kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_cpu_experimental_onednn_custom_call=false"]
).strip()
