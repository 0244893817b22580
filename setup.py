"""Package layout that pyproject.toml cannot express (everything else is in pyproject.toml).

Two directories install under other names: `app/` as `xlsearch_app.app`, so site-packages gets no
generic top-level `app` (the app's own `from app.x import ...` still work: its entry script puts
`xlsearch_app/` on sys.path), and `configs/` as `distill.presets` (the TOML presets, package
data). `benchmarks/` and `tests/` are not installed.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["distill", "distill.*", "indexer", "indexer.*"]),
        "xlsearch_app.app",
        "distill.presets",
    ],
    package_dir={"xlsearch_app.app": "app", "distill.presets": "configs"},
    package_data={"distill.presets": ["*.toml"]},
)
