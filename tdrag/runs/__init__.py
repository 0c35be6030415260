"""The files of a run directory: its layout, checkpoints, log.csv, predictions and report."""
