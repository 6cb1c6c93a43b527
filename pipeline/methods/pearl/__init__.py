"""PEARL (Rakelly et al. 2019): SAC on (s, z), z inferred by a probabilistic context encoder (Table 2's baseline).

Params block `pearl` (`config.PEARLConfig`, with its SAC's hyperparameters in `pearl.sac`). This module stays
light (schemas only): the learner is imported when a run starts (`method.build`).
"""

from pipeline.methods.pearl.config import PEARLConfig
from pipeline.methods.registry import MethodSpec

METHODS = (
    MethodSpec(
        "pearl",
        "PEARL",
        family="pearl",
        trainer="pipeline.methods.pearl.method",
        params={"pearl": PEARLConfig},
        # what a run executes besides stages/meta_train.py's imports (tests/test_dvc_pipeline.py checks both ways)
        code=(
            "pipeline/methods/pearl",
            "pipeline/agents/sac.py",
            "pipeline/agents/sac_config.py",
            "pipeline/agents/nets.py",
            "pipeline/agents/fast",
            "pipeline/data/replay.py",
            "pipeline/seeding.py",
        ),
    ),
)
