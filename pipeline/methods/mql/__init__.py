"""MQL (Fakoor et al. 2020): multi-task TD3 with a GRU context, adapted to a new task at test time by
propensity-weighted, proximal off-policy updates (Table 2's baseline).

Params block `mql` (`config.MQLConfig`). This module stays light (schemas only): the learner is imported when a
run starts (`method.build`).
"""

from pipeline.methods.mql.config import MQLConfig
from pipeline.methods.registry import MethodSpec

METHODS = (
    MethodSpec(
        "mql",
        "MQL",
        family="mql",
        trainer="pipeline.methods.mql.method",
        params={"mql": MQLConfig},
        # what a run executes besides stages/meta_train.py's imports (tests/test_dvc_pipeline.py checks both ways)
        code=("pipeline/methods/mql", "pipeline/seeding.py"),
    ),
)
