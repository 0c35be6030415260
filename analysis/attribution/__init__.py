"""What the model relies on: Captum methods with one call shape (:mod:`.methods`,
:mod:`.attribute`), their per-method defaults (:mod:`.defaults`), the cuDNN / ReLU contexts they
need (:mod:`.contexts`), faithfulness and ground-truth scores (:mod:`.faithfulness`) and the
overlay figures (:mod:`.views`). Imports :mod:`analysis.internals`, never report or notebook."""
