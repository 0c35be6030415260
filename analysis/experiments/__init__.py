"""The research instruments: the experiments behind benchmarks/RESULTS.md, as tested library code.

The benchmark scripts (``benchmarks/bench_ablation.py``, ``bench_heldout.py``,
``bench_head_diagnosis.py``) are thin mains over these modules:

    results        typed run results (RunResult, HeldoutResult, StageAgreement) and their JSON files
    summary        the paired summary: mean ± std per variant, paired differences against references
    evaluation     one checkpoint's predictions with the GRU branch on and off (tdrag's evaluation)
    attention      a run's attention against the synthetic ground truth (the shared agreement loop)
    data           the experiment's synthetic set and frame caches
    ablation       the variants, their configs, training and reading the runs
    heldout        the runs on an independent draw of the same preset
    tables, figures   the Markdown tables and the bar chart
    head_diagnosis gradients, GRU gates and states over epochs

This layer sits above internals and attribution (it scores attention with the pointing game) and
beside report; nothing in analysis imports it.
"""
