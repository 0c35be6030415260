"""The files of a run directory: its ``layout`` (RunPaths), its ``lock``, ``checkpoints``, ``epoch_log``
(log.csv), ``predictions`` and ``report``."""
