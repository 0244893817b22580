"""Typed run configuration: dataclasses loaded from TOML, overridable by `--key=value`.

Sections map to nested dataclasses (`[stage1]` -> `RunConfig.stage1`); on the command line a
dotted key reaches into a section (`--stage1.steps=10`). Unknown keys and wrongly typed values
are rejected with a message naming the key, so a typo never silently trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from distill.datasets import ASSISTANT_SPEC, DEFAULT_LANGS, NTREX, TEACHER_SPEC, UD_PUD
from distill.paths import find_config, preset_names
from distill.roles import Role

DEFAULT_TRAIN_FILES = [
    NTREX,
    UD_PUD,
    "parallel/multi30k/multi30k.train.en-de.tsv",
    "parallel/multi30k/multi30k.train.en-fr.tsv",
]


class ConfigError(ValueError):
    """A bad config file or override; the message names the key."""


class EmbeddingInit(StrEnum):
    SVD = "svd"  # rank-e factorisation of A's word embeddings
    RANDOM = "random"  # the paper's choice


class ContrastiveVariant(StrEnum):
    MCL = "mcl"  # MSE terms + cos(S_en, S_xx) regressed to cos(T_en, T_en)
    INFONCE = "infonce"  # MSE terms + in-batch cross-entropy over scaled cosines
    BOOL = "bool"  # MSE terms + cos(S_en, S_xx) regressed to the identity
    MSE = "mse"  # MSE terms only
    KL = "kl"  # MSE terms + score distillation: KL(softmax(T_xx T_en^T / t) || softmax(S_xx S_en^T / t)), both ways


class Stage3Variant(StrEnum):
    POOLED = "pooled"  # MSE(S(en), A(en)) + MSE(S(xx), A(xx)) on pooled vectors of translation pairs
    LAYERWISE = (
        "layerwise"  # frozen prefix cached; token states + cross-lingual pseudo-query scores (layerwise.py)
    )


@dataclass
class ModelsConfig:
    teacher: str = TEACHER_SPEC  # T: defines the target space
    assistant: str = ASSISTANT_SPEC  # A: multilingual, compressed into S
    prefix: str = Role.QUERY  # role prompt for A and S on both sides (symmetric task); "" = none
    trust_remote_code: bool = (
        False  # let T/A run Python shipped in their directories (auto_map); trusted authors only
    )


@dataclass
class DataConfig:
    langs: list[str] = field(
        default_factory=lambda: list(DEFAULT_LANGS)
    )  # ["*"] = every language in the files
    files: list[str] = field(default_factory=lambda: list(DEFAULT_TRAIN_FILES))  # relative to shared data
    stsb_dir: str = "sts/stsb_multi_mt"  # STSb Multi MT train translations; "" = not used
    max_pairs: int = 0  # pairs sampled (balanced over languages) for every stage; 0 = all
    # Passage pairs added to that sample: `passage_sentences` consecutive sentences of one news document
    # (NTREX doc ids), joined, in English and in xx, so S also learns multi-sentence inputs.
    passages: int = 0
    passage_sentences: int = 4
    passage_file: str = NTREX
    passage_doc_ids: str = "parallel/ntrex128_doc_ids.tsv"
    max_seq_length: int = 128
    encode_batch_size: int = 64  # for cached teacher/assistant targets


@dataclass
class VocabConfig:
    trim: bool = True  # keep only the tokens the training data uses (plus specials)
    min_count: int = 1
    keep_single_chars: bool = True  # unseen words then split into characters instead of <unk>
    # > 0: keep at most this many pieces, the most frequent in the training text (specials and, with
    # keep_single_chars, single characters first): full-width rows then fit the size budget.
    max_pieces: int = 0
    # Train and ship with A's full tokenizer: each dropped piece reads the row of the kept piece
    # nearest by A's embedding cosine (`distill untrim`), so S segments text as A does in training too.
    untrim: bool = False


@dataclass
class StudentConfig:
    embedding_size: int = 128  # e, the bottleneck (= A's hidden size: A's own rows, no bottleneck)
    # k: A's first k layers, or a list of A's layer indices (e.g. [0, 1, 2, 3, 10, 11]: the top layers
    # hold e5's question -> passage alignment across languages)
    layers: int | list[int] = 3
    passes: int = 2  # r: times the k layers are applied
    # stages 3-4 leave the word embeddings as stage 2 made them: with A's own full-width rows they are
    # already in A's space, and not updating 25M rows makes a CPU step ~2x cheaper
    freeze_embeddings: bool = False
    # Closed-form starts (distill/train/closed_form.py), fitted by least squares at the end of stage 2
    # on A's own states, no labels, no gradient: `bridge` maps A's states before the layers S skips
    # onto A's states after them; `output_map` maps S's pooled vectors onto A's.
    bridge: bool = False
    output_map: bool = False
    closed_form_texts: int = 3000  # training texts (both roles) the maps are fitted on

    def layer_ids(self) -> list[int]:
        """The indices of A's layers the student starts from, in order."""
        return list(range(self.layers)) if isinstance(self.layers, int) else list(self.layers)

    init: EmbeddingInit = EmbeddingInit.SVD


@dataclass
class StageConfig:
    steps: int = 200
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    max_pairs: int = 0  # 0 = data.max_pairs
    checkpoint_every: int = 50
    log_every: int = 10


@dataclass
class OptionalStageConfig(StageConfig):
    """Stages 1, 3 and 4; stage 2 builds the student and always runs (it has no `enabled`)."""

    enabled: bool = True


@dataclass
class Stage1Config(OptionalStageConfig):
    freeze_word_embeddings: bool = True  # 96M of e5's 117M parameters; frozen, stage 1 is ~2x cheaper


@dataclass
class Stage2Config(StageConfig):
    lr: float = 1e-3


@dataclass
class Stage3Config(OptionalStageConfig):
    lr: float = 1e-4
    variant: Stage3Variant = Stage3Variant.POOLED
    # layerwise only (distill/train/layerwise.py); batch_size counts window groups there
    frozen_layers: int = 4  # S's first layers, A's own: their outputs are computed once, never trained
    weight_tokens: float = 1.0  # MSE of the last layer's token states to A's
    weight_layers: float = 0.5  # MSE of the other trained layers' token states to A's at their layer
    weight_scores: float = 1.0  # KL of the teacher's query -> in-batch passage distribution
    weight_pooled: float = 0.0  # MSE of pooled vectors to A's
    kl_temperature: float = 0.02
    # pseudo-queries: windows of data.passage_sentences sentences of data.passage_file's documents
    window_langs: list[str] = field(
        default_factory=lambda: ["en", "de", "es", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi", "ro"]
    )
    window_group: int = 4  # consecutive windows of one document per group: each other's hard negatives
    max_windows: int = 0  # a seeded sample of whole groups up to this many windows; 0 = all


@dataclass
class Stage4Config(OptionalStageConfig):
    lr: float = 5e-5
    variant: ContrastiveVariant = ContrastiveVariant.MCL
    weight_en: float = 1.0
    weight_xx: float = 1.0
    weight_cos: float = 1.0
    infonce_weight: float = 0.01
    infonce_scale: float = 20.0
    # kl: the teacher's in-batch score distribution is the target; its temperature must keep it
    # peaked (e5 was trained at 0.01, and its unrelated pairs sit only ~0.15 below translations)
    kl_weight: float = 1.0
    kl_temperature: float = 0.02


@dataclass
class EvalConfig:
    enabled: bool = True
    quick: bool = True
    langs: list[str] = field(default_factory=lambda: list(DEFAULT_LANGS))
    baselines: bool = True  # also score T and the raw assistant once per run
    # > 0: also score S every this many steps of stages 3-4 (a learning curve: "eval" events with a
    # "step" in metrics.jsonl); scoring time is not counted as training time
    every: int = 0


@dataclass
class RunConfig:
    name: str = "offline"
    seed: int = 42
    device: str = "auto"  # auto = cuda if available, else cpu
    threads: int = 0  # torch intra-op threads; 0 = torch default
    out_dir: str = ""  # final student; default data/students/<name>
    cache_dir: str = ""  # cached target embeddings; default data/cache
    models: ModelsConfig = field(default_factory=ModelsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    stage3: Stage3Config = field(default_factory=Stage3Config)
    stage4: Stage4Config = field(default_factory=Stage4Config)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def stage(self, n: int) -> StageConfig:
        return getattr(self, f"stage{n}")

    def runs_stage(self, n: int) -> bool:
        return getattr(self.stage(n), "enabled", True)  # stage 2 has no switch


# --- loading ----------------------------------------------------------------------------------------


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting where TOML's types are narrower."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a [{key}] section (a table), got {value!r}")
        return _build(tp, value, key + ".")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (types.UnionType, typing.Union):
        errors = []
        for arm in typing.get_args(tp):  # the first arm that accepts the value (e.g. `int | list[int]`)
            try:
                return _coerce(value, arm, key)
            except ConfigError as exc:
                errors.append(str(exc).removeprefix(f"{key}: "))
        raise ConfigError(f"{key}: {' or '.join(errors)}")
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not one of {[m.value for m in tp]}") from None
    return _coerce_scalar(value, tp, key)


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    """TOML's booleans, integers, floats (an integer is a float too) and strings; a bool is no number."""
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):  # TOML has nan and inf literals; no setting means them
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {tp}")


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s): {', '.join(prefix + k for k in unknown)} (known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Plain dict (enums as strings) for TOML/JSON output."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, StrEnum):
            v = v.value
        out[f.name] = v
    return out


def parse_value(text: str) -> Any:
    """An override's value as TOML (`3`, `1e-4`, `true`, `["de","fr"]`), else the literal string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        if "," in text and not text.startswith("["):  # --data.langs=de,fr
            return [t.strip() for t in text.split(",") if t.strip()]
        return text


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply `key=value` / `--key=value` strings (dotted keys for sections) to a raw config dict."""
    for item in overrides:
        text = item[2:] if item.startswith("--") else item
        if "=" not in text:
            raise ConfigError(f"override {item!r} must look like --key=value (e.g. --stage1.steps=10)")
        key, raw = text.split("=", 1)
        parts = key.strip().replace("-", "_").split(".")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = parse_value(raw)
    return values


def _fix_list_overrides(values: dict, cls: type) -> None:
    """A single value given for a list field (`--data.langs=de`) means a one-element list."""
    hints = typing.get_type_hints(cls)
    for k, v in values.items():
        tp = hints.get(k)
        if tp is None:
            continue
        if dataclasses.is_dataclass(tp) and isinstance(v, dict):
            _fix_list_overrides(v, tp)
        elif typing.get_origin(tp) is list and isinstance(v, str):
            values[k] = [v]


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults <- TOML file (a path or a preset name such as `offline`) <- overrides, validated."""
    values: dict = {}
    if path is not None:
        found = find_config(path)
        if found is None:
            raise ConfigError(f"config file {path} not found; presets by name: {', '.join(preset_names())}")
        values = _read_preset(found)
    # Only a command-line value may stand for a one-element list (`--data.langs=de`); in a file,
    # `langs = "de"` is a type error like any other.
    given = apply_overrides({}, overrides or [])
    _fix_list_overrides(given, RunConfig)
    cfg = _build(RunConfig, _merge(values, given))
    validate(cfg)
    return cfg


def _read_preset(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A TOML file with `base = "<preset or path>"` resolved: the base's values, then this file's over them."""
    values = _read_toml(path)
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must be a preset name or a path, got {base!r}")
    found = find_config(base) or find_config(path.parent / base)
    if found is None:
        raise ConfigError(f"{path}: base {base!r} not found; presets by name: {', '.join(preset_names())}")
    chain = (*seen, path.resolve())
    if found.resolve() in chain:
        raise ConfigError(f"{path}: base {base!r} makes a cycle ({' -> '.join(p.name for p in chain)})")
    return _merge(_read_preset(found, chain), values)


def _read_toml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file (give a TOML file, e.g. configs/offline.toml)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: arrays or tables nested too deeply") from None


def _merge(base: dict, top: dict) -> dict:
    """`top` over `base`, section by section."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _at_least(key: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value!r}")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value!r}")


def _validate_student(s) -> None:
    for name in ("embedding_size", "passes"):
        _at_least(f"student.{name}", getattr(s, name), 1)
    if isinstance(s.layers, int):
        _at_least("student.layers", s.layers, 1)
    elif not s.layers or min(s.layers) < 0 or len(set(s.layers)) != len(s.layers):
        raise ConfigError(
            f"student.layers = {s.layers}: give k >= 1 or a non-empty list of distinct layer indices >= 0"
        )
    _at_least("student.closed_form_texts", s.closed_form_texts, 1)
    if s.bridge:
        ids = s.layer_ids()
        gaps = [i for i in range(len(ids) - 1) if ids[i + 1] != ids[i] + 1]
        if len(gaps) != 1 or s.passes != 1:
            raise ConfigError(
                f"student.bridge needs student.passes = 1 and layers with one gap (e.g. [0, 1, 2, 3, 10, 11]), "
                f"not layers = {s.layers} with passes = {s.passes}"
            )


def _validate_stage(n: int, st) -> None:
    for name, minimum in (
        ("steps", 0),
        ("batch_size", 1),
        ("max_pairs", 0),
        ("checkpoint_every", 1),
        ("log_every", 1),
        ("weight_decay", 0),
    ):
        _at_least(f"stage{n}.{name}", getattr(st, name), minimum)
    for name in ("lr", "grad_clip"):  # a clip norm of 0 would zero every gradient
        _positive(f"stage{n}.{name}", getattr(st, name))
    if not 0 <= st.warmup_ratio < 1:
        raise ConfigError(f"stage{n}.warmup_ratio must be in [0, 1)")


def _validate_layerwise(cfg: RunConfig) -> None:
    st = cfg.stage3
    _at_least("stage3.frozen_layers", st.frozen_layers, 0)
    _at_least("stage3.window_group", st.window_group, 1)
    _at_least("stage3.max_windows", st.max_windows, 0)
    for name in ("weight_tokens", "weight_layers", "weight_scores", "weight_pooled"):
        _at_least(f"stage3.{name}", getattr(st, name), 0)
    _positive("stage3.kl_temperature", st.kl_temperature)
    if st.variant != Stage3Variant.LAYERWISE:
        return
    if cfg.student.passes != 1:
        raise ConfigError(
            "stage3.variant = 'layerwise' needs student.passes = 1 (a second pass re-enters the frozen layers)"
        )
    if cfg.student.bridge:
        raise ConfigError(
            "stage3.variant = 'layerwise' regresses layer states: it does not take student.bridge"
        )
    if st.frozen_layers >= len(cfg.student.layer_ids()):
        raise ConfigError(
            f"stage3.frozen_layers = {st.frozen_layers} leaves none of the student's {len(cfg.student.layer_ids())} layers to train"
        )
    if not st.window_langs:
        raise ConfigError("stage3.window_langs is empty")
    if cfg.vocab.trim and not cfg.vocab.untrim:
        raise ConfigError(
            "stage3.variant = 'layerwise' regresses S's token states onto A's, so S must read A's tokens: "
            "set vocab.untrim = true (or vocab.trim = false)"
        )


def validate(cfg: RunConfig) -> None:
    _validate_student(cfg.student)
    _at_least("threads", cfg.threads, 0)
    d = cfg.data
    for name, minimum in (
        ("max_pairs", 0),
        ("passages", 0),
        ("passage_sentences", 1),
        ("max_seq_length", 1),
        ("encode_batch_size", 1),
    ):
        _at_least(f"data.{name}", getattr(d, name), minimum)
    _at_least("vocab.min_count", cfg.vocab.min_count, 1)
    _at_least("vocab.max_pieces", cfg.vocab.max_pieces, 0)
    if cfg.vocab.untrim and not cfg.vocab.trim:
        raise ConfigError(
            "vocab.untrim = true needs vocab.trim = true (an untrimmed vocabulary has nothing to map)"
        )
    _at_least("eval.every", cfg.eval.every, 0)
    _validate_layerwise(cfg)
    for n in (1, 2, 3, 4):
        _validate_stage(n, cfg.stage(n))
    for name in ("weight_en", "weight_xx", "weight_cos", "infonce_weight", "kl_weight"):
        _at_least(f"stage4.{name}", getattr(cfg.stage4, name), 0)
    _positive("stage4.infonce_scale", cfg.stage4.infonce_scale)
    _positive("stage4.kl_temperature", cfg.stage4.kl_temperature)
    if cfg.stage4.variant == ContrastiveVariant.INFONCE and cfg.stage4.batch_size < 2:
        raise ConfigError("stage4.variant = 'infonce' needs batch_size >= 2 (in-batch negatives)")
    if not cfg.data.langs:
        raise ConfigError("data.langs is empty")
    if cfg.models.prefix not in ("", *Role):
        raise ConfigError("models.prefix must be 'query', 'passage' or ''")


def dump_toml(cfg: RunConfig) -> str:
    """The config as TOML (scalars first, then one table per section)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return repr(v)

    d = to_dict(cfg)
    lines = [f"{k} = {fmt(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {fmt(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"
