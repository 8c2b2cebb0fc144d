"""Matryoshka (MRL) sweeps: a model's runs at several output dimensions, one point per dimension.

Experiments named ``embed_dim_<d>`` are dimension ``d``; the base run counts as the dimension its
``model_meta.json`` states, unless an experiment already covers that dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qzhou_eval.report.aggregate import Summary
from qzhou_eval.report.discover import experiment_dim


@dataclass(frozen=True)
class MrlCurve:
    """One model revision's summaries by output dimension (ascending)."""

    model: str
    revision: str
    points: dict[int, Summary]

    @property
    def dims(self) -> list[int]:
        return sorted(self.points)


def mrl_curves(summaries: Sequence[Summary]) -> list[MrlCurve]:
    """The sweeps with at least two dimensions, one per (model, revision)."""
    by_model: dict[tuple[str, str], dict[int, Summary]] = {}
    bases: dict[tuple[str, str], Summary] = {}
    for s in summaries:
        key = (s.run.model, s.run.revision)
        if s.run.experiment is None:
            bases[key] = s
            continue
        dim = experiment_dim(s.run.experiment)
        if dim is not None:
            by_model.setdefault(key, {})[dim] = s
    curves = []
    for key, points in sorted(by_model.items()):
        base = bases.get(key)
        dim = base.scores.embed_dim if base is not None else None
        if base is not None and dim is not None and dim not in points:
            points = {**points, dim: base}
        if len(points) >= 2:
            curves.append(MrlCurve(key[0], key[1], dict(sorted(points.items()))))
    return curves
