"""What the model computes: the opened run and its one cached inspection pass (:mod:`.run`),
attention over the keyframes (:mod:`.attention`), GRU trajectories (:mod:`.trajectories`),
single-clip views (:mod:`.clip_views`), the synthetic ground truth aligned with the clips
(:mod:`.ground_truth`) and the one loop that scores maps against it (:mod:`.agreement`). Imports
only :mod:`analysis.plotting` and tdrag."""
