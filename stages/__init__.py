"""The pipeline's stage scripts and the modules they share."""

import os

# Before any stage imports TensorFlow: its C++ start-up chatter (CUDA probes, graph warnings)
# would bury the stage's own output. Python errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
