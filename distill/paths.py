"""Where the project keeps generated artefacts, finds its presets and the shared data.

Generated artefacts (converted models, students, collections, reports) go to `data_dir()`:
`$XLSEARCH_DATA`, else `data/` of the source checkout this package runs from, else (an installed
copy) the user cache directory, e.g. `~/.cache/xlsearch`. The shared data sets default to
`../shared/data` beside the checkout (`$XLSEARCH_SHARED_DATA` overrides).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESET_SUFFIX = ".toml"


def in_checkout() -> bool:
    """True when this package runs from a source checkout (not from site-packages)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "distill" / "paths.py").is_file()


def user_cache_dir() -> Path:
    """The platform's per-user cache directory for xlsearch."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "xlsearch"


def data_dir() -> Path:
    """Root for generated artefacts: `$XLSEARCH_DATA`, else `<checkout>/data`, else the user cache."""
    env = os.environ.get("XLSEARCH_DATA")
    path = Path(env) if env else REPO_ROOT / "data" if in_checkout() else user_cache_dir()
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


def presets_dir() -> Path:
    """The TOML presets: `configs/` of the checkout, or the copy installed as `distill.presets`."""
    if (REPO_ROOT / "configs").is_dir():
        return REPO_ROOT / "configs"
    return Path(__file__).resolve().parent / "presets"  # setup.py installs configs/ there


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob(f"*{PRESET_SUFFIX}"))


def find_config(spec: str | Path) -> Path | None:
    """A config file for `spec`: an existing path, a path relative to the checkout (e.g.
    `configs/offline.toml`), or a preset name (`offline`, `offline.toml`). None if nothing matches."""
    path = Path(spec).expanduser()
    if path.exists():  # a directory too: the reader then says it is not a file
        return path
    if not path.is_absolute() and (REPO_ROOT / path).is_file():
        return REPO_ROOT / path
    if len(path.parts) == 1 or path.parent.name == "configs":
        preset = presets_dir() / (path.stem + PRESET_SUFFIX)
        if preset.is_file() and path.suffix in ("", PRESET_SUFFIX):
            return preset
    return None


SHIPPED_STUDENT = "student-offline"


def shipped_student() -> Path | None:
    """The student committed under `models/` of a checkout (see models/README.md), if present."""
    path = REPO_ROOT / "models" / SHIPPED_STUDENT
    return path if (path / "modules.json").is_file() else None


UNTRIMMED_STUDENT = "offline-untrimmed"  # <data>/students/: the shipped student, untrimmed by `make demo`
DERIVED_FROM = "xlsearch-derived-from.json"  # in a derived model: the weights fingerprint of its source


def record_source(derived: Path, source: Path) -> None:
    """Note in `derived` which weights of `source` it was made from (see `derived_from`)."""
    import json

    from distill.modelspec import weights_fingerprint

    record = {"source": str(source), "weights": weights_fingerprint(source)}
    (derived / DERIVED_FROM).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def derived_from(derived: Path, source: Path) -> bool:
    """Whether `derived` was made from `source`'s weights as they are now (`weights_fingerprint`)."""
    import json

    from distill.modelspec import weights_fingerprint

    try:
        record = json.loads((derived / DERIVED_FROM).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("weights") == weights_fingerprint(source)


def needs_untrim(student: Path) -> bool:
    """Whether a student directory still has a trimmed vocabulary that `distill untrim` would widen:
    an xlsearch student whose config has no `token_map_size` (the row table untrim adds). A student
    trained untrimmed (`vocab.untrim`) or already untrimmed needs nothing."""
    import json

    try:
        config = json.loads((student / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "xlsearch_recurrent" and not config.get("token_map_size")


def default_student(data: Path | None = None) -> Path:
    """The student the demo serves: the shipped one untrimmed (`distill untrim`: better on the question
    task and bitext, see README) once derived from the shipped weights as they are now, else the
    shipped one, else the one `distill run --config offline` writes. `data` defaults to `data_dir()`."""
    students = (data or data_dir()) / "students"
    shipped, untrimmed = shipped_student(), students / UNTRIMMED_STUDENT
    if shipped is None:
        return students / "offline"
    if not needs_untrim(shipped):
        return shipped
    current = (untrimmed / "model.safetensors").is_file() and derived_from(untrimmed, shipped)
    return untrimmed if current else shipped
