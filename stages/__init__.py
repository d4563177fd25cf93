"""The pipeline's stage scripts and the modules they share."""

import os

# Before any stage imports TensorFlow: its C++ start-up chatter (CUDA probes, graph warnings)
# would bury the stage's own output. Python errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 or newer; on
# this AVX2 machine they made a CNN epoch 1.35x faster (32 s against 43 s). Inside XLA they
# made the compiled MLP step 2x slower, so XLA keeps its own kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_XLA_OWN_KERNELS = "--xla_cpu_experimental_onednn_custom_call=false"
if _XLA_OWN_KERNELS not in os.environ.get("XLA_FLAGS", ""):  # a stage's subprocess inherits it
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_OWN_KERNELS}".strip()
