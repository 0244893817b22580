"""Speed, size and scale benchmarks: `python -m benchmarks.<encode|index|search|app>` or `make bench`.

Every script compares alternatives inside one run, interleaved (A B A B ...) after a warm-up, reports
median and spread, and writes `benchmarks/results/<name>.json` with the machine it ran on. Headline
figures are ratios measured in the same run, so they survive a noisy shared machine better than
absolute numbers do. Shared plumbing lives in `benchmarks.common`.
"""
