"""The pipeline's stage scripts and the modules they share."""
