"""What the model computes: the opened run and its one cached inspection pass (:mod:`.run`),
attention over the keyframes (:mod:`.attention`), GRU trajectories (:mod:`.trajectories`),
single-clip views (:mod:`.clip_views`) and the synthetic ground truth aligned with the clips
(:mod:`.ground_truth`). Imports only :mod:`analysis.plotting` and tdrag."""
