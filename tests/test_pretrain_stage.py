"""Stage pretrain_source: outputs, determinism, refusal of bad params before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stages import pretrain_source

SETTING = "hopper-size"


def run(params: Path, root: Path, setting: str = SETTING) -> None:
    pretrain_source.main([setting, "--params", str(params), "--root", str(root), "--no-progress"])


@pytest.mark.slow
def test_outputs_and_same_seed_gives_identical_curve_and_checkpoint(smoke_params: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    run(smoke_params, first)
    run(smoke_params, second)
    report = Path("reports/pretrain") / SETTING
    curve_a = (first / report / "curve.csv").read_text()
    assert curve_a == (second / report / "curve.csv").read_text()
    assert curve_a.splitlines()[0] == "env_steps,mean_return,stderr"
    steps = [int(line.split(",")[0]) for line in curve_a.splitlines()[1:]]
    assert steps == [0, 300, 600]  # smoke budget: eval every 300 of 600 steps

    files = [root / "data/pretrain" / SETTING / "td3.pt" for root in (first, second)]
    assert files[0].read_bytes() == files[1].read_bytes()  # byte-identical checkpoints
    ckpt_a = torch.load(first / "data/pretrain" / SETTING / "td3.pt", weights_only=True)
    ckpt_b = torch.load(second / "data/pretrain" / SETTING / "td3.pt", weights_only=True)
    for key in ("actor", "critic"):
        assert all(torch.equal(ckpt_a[key][k], ckpt_b[key][k]) for k in ckpt_a[key])
    assert ckpt_a["total_it"] == 600 - 200  # one update per step after the random start

    metrics = json.loads((first / report / "metrics.json").read_text())
    assert metrics["setting"] == SETTING and metrics["profile"] == "smoke" and metrics["env_steps"] == 600
    assert not list((first / report).glob("*.tmp")), "no temp files left behind"


def test_bad_params_stop_before_any_output(smoke_params: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    smoke_params.write_text(smoke_params.read_text().replace("lr: 0.0003", "lr: -0.1"))
    with pytest.raises(SystemExit) as info:
        run(smoke_params, tmp_path / "out")
    assert info.value.code == 2
    assert "td3.lr" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_setting_is_refused(smoke_params: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        run(smoke_params, tmp_path / "out", setting="walker-size")
    assert "halfcheetah-armature" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
