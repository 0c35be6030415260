"""Training: ``fit`` (a run on one fold) with its checkpoint ``saver``, the ``engine``'s epoch and
evaluation loops, ``losses``, ``schedule``, a run's ``data``, ``evaluate`` (a run's report), the
k-fold protocol (``crossval``) and the ``demo`` run."""
