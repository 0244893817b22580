"""Where the project keeps generated artefacts and finds the shared data.

`data/` beside the package (git-ignored) holds converted models, students, collections and
reports. Both locations can be moved with environment variables, so an installed (non-editable)
copy or a CI runner can point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Root for generated artefacts: `$XLSEARCH_DATA`, else `<repo>/data`."""
    env = os.environ.get("XLSEARCH_DATA")
    path = Path(env) if env else REPO_ROOT / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Cache of converted models (`data/models/`)."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path:
    """The read-only shared data sets: `$XLSEARCH_SHARED_DATA`, else `<repo>/../shared/data`."""
    env = os.environ.get("XLSEARCH_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
