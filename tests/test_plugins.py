"""Methods and settings as plug-ins: a toy method (tests/toy_method.py) and a toy setting whose tasks are names
(tests/toy_setting.py), registered from the test, run through the stages' code paths and reach the reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import toy_method  # tests/ is on sys.path (pytest's default import mode)
import toy_setting
from omegaconf import OmegaConf

from pipeline.config import ParamsError, validate
from pipeline.data.dataset import read_dataset
from pipeline.envs import make_env
from pipeline.envs.registry import SETTINGS, registered_setting
from pipeline.methods.registry import MethodSpec, get_method, label, method_names, registered
from stages import collect, evaluate_transfer, meta_train, plot, pretrain_tasks, train_translator

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


def test_the_registry_lists_mcat_and_its_ablations_with_their_labels() -> None:
    assert method_names()[:3] == ("mcat", "mcat_no_pt", "mcat_no_sil")
    assert [label(m) for m in method_names()[:3]] == ["MCAT", "MCAT w/o PT", "MCAT w/o SIL"]
    assert get_method("mcat_no_pt").options == {"transfer": False, "sil": True}
    assert label("pearl") == "PEARL" and label("mql") == "MQL"  # Table 2 baselines (rows "PEARL (ours)", ...)
    registered_names = "mcat, mcat_no_pt, mcat_no_sil, mql, pearl"
    with pytest.raises(ValueError, match=f"unknown method 'maml'; registered: {registered_names}"):
        get_method("maml")


def test_a_registered_method_brings_its_params_block_validated_by_its_schema() -> None:
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "params.yaml"))
    with pytest.raises(ParamsError, match="unknown key 'toy'"):
        validate({**raw, "toy": {"action": 0.5}})
    with registered(*toy_method.METHODS):
        assert validate({**raw, "toy": {"action": 0.5}}).toy.action == 0.5
        assert validate(raw).toy.action == 0.0  # the schema's default where params.yaml has no block
        with pytest.raises(ParamsError, match=r"unknown key 'toy.actoin'; allowed keys here: action"):
            validate({**raw, "toy": {"actoin": 0.5}})
        with pytest.raises(ParamsError, match=r"toy.action = 2.0 is out of range; allowed: >= -1 and <= 1"):
            validate({**raw, "toy": {"action": 2.0}})
        with pytest.raises(ValueError, match="registered twice"), registered(*toy_method.METHODS):
            pass
        other = MethodSpec("other", "Other", family="other", trainer=toy_method, params={"meta": toy_method.ToyConfig})
        with pytest.raises(ValueError, match="params block 'meta' is owned by 'mcat'"), registered(other):
            pass
    assert "toy" not in method_names()


def test_a_setting_checks_its_own_task_values() -> None:
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "params.yaml"))
    spec = {"tasks": ["light", "medium"], "pair": ["light", "medium"]}
    with pytest.raises(ParamsError, match=r"unknown key 'transfer\.slider'; allowed settings: halfcheetah-armature"):
        validate({**raw, "transfer": {"slider": spec}})
    with registered_setting("slider", toy_setting.SLIDER):
        with pytest.raises(ParamsError, match=r"transfer.slider.tasks\[1\]: slider task must be one of light, heavy"):
            validate({**raw, "transfer": {"slider": spec}})
        env = make_env("slider", "heavy", delay=3, max_episode_steps=7)
        assert env.spec.max_episode_steps == 7 and env.unwrapped.model.body_mass[1] == 2.0
        rebuilt = env.spec.make()  # the registered Gymnasium id rebuilds the same task
        assert rebuilt.unwrapped.model.body_mass[1] == 2.0
    assert "slider" not in SETTINGS


def _params(smoke_params: Path, tmp_path: Path, **changes: object) -> Path:
    raw = OmegaConf.load(smoke_params)
    for key, value in changes.items():
        OmegaConf.update(raw, key, value, force_add=True)
    path = tmp_path / "params.yaml"
    OmegaConf.save(raw, path)
    return path


def _without_wall_time(path: Path) -> dict:
    """metrics.json less its timings (wall and evaluation seconds), which no two runs share."""
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("wall_seconds", "eval_seconds")}


@pytest.mark.slow
def test_a_toy_method_trains_resumes_and_gets_a_table_2_row_and_a_fig_3_curve(
    smoke_params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    params = _params(smoke_params, tmp_path, **{"meta_train.methods": ["toy"], "toy": {"action": 0.5},
                                                "budgets.smoke.checkpoint_every": 200})  # fmt: skip
    setting = OmegaConf.load(params).meta_train.settings[0]
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    report = Path("reports/meta") / setting / "toy"

    def run(root: Path) -> None:
        meta_train.main([setting, "toy", "--params", str(params), "--root", str(root), "--no-progress"])

    with registered(*toy_method.METHODS):
        run(plain)
        real = toy_method.ToyLearner.train

        def interrupted(self: toy_method.ToyLearner, steps: int) -> None:
            if self.step >= 130:  # loop steps; checkpoints every 40 (200 env steps of 5 tasks): the last at 160
                raise KeyboardInterrupt
            real(self, steps)

        monkeypatch.setattr(toy_method.ToyLearner, "train", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(killed)
        monkeypatch.setattr(toy_method.ToyLearner, "train", real)
        capsys.readouterr()
        run(killed)
        out = capsys.readouterr().out
        assert f"meta_train {setting} toy: resuming at env step 800 of 1000" in out, out
        for name in ("curve.csv", "embeddings.csv"):
            assert (killed / report / name).read_bytes() == (plain / report / name).read_bytes(), name
        metrics = _without_wall_time(killed / report / "metrics.json")
        assert metrics == _without_wall_time(plain / report / "metrics.json")
        assert metrics["method"] == "toy" and metrics["constant_action"] is True and metrics["env_steps"] == 1000
        assert json.loads((killed / "data/meta" / setting / "toy" / "toy.json").read_text())["action"] == [0.5] * 6
        assert not (killed / ".resume" / "meta_train" / f"{setting}-toy").exists()

        shutil.copytree(ROOT / "reports" / "metrics", killed / "reports" / "metrics")  # Table 1's summaries
        plot.main(["--params", str(params), "--root", str(killed), "tables"])
        table2 = (killed / "reports" / "tables" / "table2.md").read_text()
        assert "| Toy (constant action) (ours) |" in table2
        curves = {}
        monkeypatch.setattr(plot, "fig3_curves", lambda path, drawn, title, budget: curves.update(drawn))
        plot.main(["--params", str(params), "--root", str(killed), "fig3", setting])
        steps, mean, _ = curves["Toy (constant action)"]
        assert list(curves) == ["Toy (constant action)"] and list(steps) == [0, 500, 1000] and np.isfinite(mean).all()
        plot.main(["--params", str(params), "--root", str(killed), "embeddings", setting, "toy"])
        assert (killed / "reports/figures" / f"embeddings_{setting}_toy.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_a_toy_setting_with_named_tasks_runs_the_transfer_branch(smoke_params: Path, tmp_path: Path) -> None:
    tasks = ["light", "heavy", "sticky"]
    params = _params(smoke_params, tmp_path, transfer={"slider": {"tasks": tasks, "pair": ["light", "heavy"]}})
    root = tmp_path / "run"
    args = ["slider", "--params", str(params), "--root", str(root)]
    with registered_setting("slider", toy_setting.SLIDER):
        pretrain_tasks.main([*args, "--no-progress"])
        collect.main([*args, "--no-progress"])
        train_translator.main([*args, "--no-progress"])
        evaluate_transfer.main(args)
        plot.main(["--params", str(params), "--root", str(root), "fig5", "slider"])
    _, info = read_dataset(root / "data/datasets/slider", setting="slider")
    assert info.tasks == {0: "light", 1: "heavy", 2: "sticky"}
    assert json.loads((root / "reports/pretrain_tasks/slider/metrics.json").read_text())["tasks"] == tasks
    metrics = json.loads((root / "reports/metrics/transfer_slider.json").read_text())
    assert metrics["pair"] == ["light", "heavy"] and metrics["fig5"]["tasks"] == tasks
    assert (root / "data/translators/slider/seed0.pt").is_file()
    for figure in ("fig5_slider.png", "transfer_fits_slider.png"):
        assert (root / "reports/figures" / figure).read_bytes().startswith(b"\x89PNG")
