"""The paper's published numbers, shown beside ours as a reference column (never used as results)."""

from __future__ import annotations

from typing import NamedTuple


class Table1Row(NamedTuple):
    label: str
    source_policy: float
    zhang_et_al: tuple[float, float]  # mean, standard error over 3 runs
    ours: tuple[float, float]


# Table 1 of the paper (MuJoCo rows), keyed by our setting name.
TABLE1 = {
    "halfcheetah-armature": Table1Row("HalfCheetah", 2355.0, (3017.1, 44.2), (2937.2, 9.5)),
    "ant-cripple": Table1Row("Ant", 55.8, (97.2, 2.5), (208.1, 8.2)),
}
