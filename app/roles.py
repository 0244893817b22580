"""Which of a collection's models fills the teacher column and which the student column.

A collection stores one index per model spec. The app wants the configured teacher (A) on the left
and the distilled student on the right; while no student has been distilled, a stand-in model is
shown in its place, labelled as such, so nobody mistakes its numbers for the student's.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.display import md_code
from distill.modelspec import display_name, same_spec


def short_name(spec: str) -> str:
    """A compact label: `pkg:all-MiniLM-L6-v2` -> `all-MiniLM-L6-v2`, a directory -> its last two names."""
    return display_name(spec, parts=2)


@dataclass(frozen=True)
class ColumnModel:
    """A model chosen for one column, with the label shown above it."""

    spec: str
    label: str
    note: str = ""
    report_label: str = "teacher"  # its label in quality reports: teacher, student, stand-in, second


@dataclass(frozen=True)
class RoleChoice:
    teacher: ColumnModel | None
    student: ColumnModel | None
    warnings: tuple[str, ...] = ()


def choose_models(available: list[str], *, teacher: str, student: str, standin: str) -> RoleChoice:
    """Pick the teacher and student columns among a collection's model specs.

    Teacher: the configured teacher, else the first model. Student: the distilled student, else the
    stand-in (labelled), else any other model (labelled). Missing roles come back as None with a
    warning that says how to fix it.
    """
    warnings: list[str] = []
    if not available:
        return RoleChoice(None, None, ("This collection has no model index yet.",))
    t_spec = next((m for m in available if same_spec(m, teacher)), None)
    if t_spec is None:
        t_spec = available[0]
        warnings.append(
            f"The teacher {md_code(teacher)} is not indexed in this collection; showing {md_code(t_spec)} instead."
        )
    teacher_col = ColumnModel(t_spec, f"Teacher · {short_name(t_spec)}", report_label="teacher")
    others = [m for m in available if m != t_spec]
    s_spec = next((m for m in others if same_spec(m, student)), None)
    if s_spec is not None:
        return RoleChoice(
            teacher_col,
            ColumnModel(s_spec, f"Student · {short_name(s_spec)}", report_label="student"),
            tuple(warnings),
        )
    s_spec = next((m for m in others if same_spec(m, standin)), None)
    if s_spec is not None:
        note = (
            f"No distilled student is indexed in this collection, so {md_code(short_name(s_spec))} stands in for it. "
            "Run `make demo` after distillation (`distill run --config configs/offline.toml`) to index the student."
        )
        return RoleChoice(
            teacher_col,
            ColumnModel(s_spec, f"Student (stand-in) · {short_name(s_spec)}", note, "stand-in"),
            tuple(warnings),
        )
    if others:
        s_spec = others[0]
        note = f"{md_code(short_name(s_spec))} is neither the configured student nor the stand-in."
        return RoleChoice(
            teacher_col,
            ColumnModel(s_spec, f"Second model · {short_name(s_spec)}", note, "second"),
            tuple(warnings),
        )
    warnings.append("This collection indexes a single model, so there is no student column to compare with.")
    return RoleChoice(teacher_col, None, tuple(warnings))
