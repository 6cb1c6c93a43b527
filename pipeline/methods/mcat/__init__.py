"""MCAT (paper Sec. 3.4) and its ablations: context TD3, self-imitation, policy transfer through the translator.

The three methods run one loop (`loop.MetaTrainer`) and differ by two switches, their `options`: policy
transfer (`transfer`) and self-imitation learning (`sil`). Their params blocks are `meta` (`config.MetaConfig`)
and `sil` (`sil_config.SILConfig`); they also read `td3`, `context`, `forward_model` and `translator`.
This module stays light (schemas only): the loop is imported when a run starts (`method.build`).
"""

from pipeline.methods.mcat.config import MetaConfig
from pipeline.methods.mcat.sil_config import SILConfig
from pipeline.methods.registry import MethodSpec

_FAMILY = {
    "family": "mcat",
    "trainer": "pipeline.methods.mcat.method",
    "params": {"meta": MetaConfig, "sil": SILConfig},
    "reads": ("td3", "context", "forward_model", "translator"),
    # what the loop runs besides stages/meta_train.py's imports (tests/test_dvc_pipeline.py checks both ways)
    "code": (
        "pipeline/methods/mcat",
        "pipeline/agents/td3.py",
        "pipeline/agents/nets.py",
        "pipeline/agents/fast",
        "pipeline/models",
        "pipeline/transfer/fit.py",
        "pipeline/transfer/windows.py",
        "pipeline/data/replay.py",
        "pipeline/data/dataset.py",
        "pipeline/hardware.py",
        "pipeline/seeding.py",
    ),
}

METHODS = (
    MethodSpec("mcat", "MCAT", options={"transfer": True, "sil": True}, **_FAMILY),
    MethodSpec("mcat_no_pt", "MCAT w/o PT", options={"transfer": False, "sil": True}, **_FAMILY),  # Table 3's
    MethodSpec("mcat_no_sil", "MCAT w/o SIL", options={"transfer": True, "sil": False}, **_FAMILY),  # App. D.4
)
