"""Inspection of trained tdrag models: attention, GRU trajectories, attributions, faithfulness,
report figures and notebook widgets. Imports tdrag; tdrag never imports this package."""
