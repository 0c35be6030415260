"""Data layer: DFEW reading, synthetic DFEW-format clips, keyframes, frame cache and loaders."""
