"""The DVC pipeline runs end to end through `dvc repro` at the smoke budget; stage deps are complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipeline.data.dataset import read_dataset

ROOT = Path(__file__).resolve().parents[1]


def dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["DVC_NO_ANALYTICS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )


@pytest.mark.slow
def test_dvc_repro_smoke(tmp_path: Path, smoke_params: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", work)
    raw = OmegaConf.load(smoke_params)
    raw.meta_train.other_delays = [200]  # Table 4's sweep: meta_delay@200-<setting>-<method>
    raw.meta_train.methods = [*raw.meta_train.methods, "pearl", "mql"]  # as `-S 'meta_train.methods=[...]'` adds them
    raw.mql.replay_updates, raw.mql.snapshot_updates = 5, 2  # MQL's test-time adaptation at a smoke budget
    OmegaConf.save(raw, work / "params.yaml")
    assert dvc(["init", "--no-scm", "-q"], work).returncode == 0

    result = dvc(["repro"], work)
    assert result.returncode == 0, result.stdout + result.stderr

    settings = OmegaConf.load(work / "params.yaml").tasks.keys()
    for setting in settings:
        assert (work / "data/pretrain" / setting / "td3.pt").is_file()
        metrics = json.loads((work / "reports/pretrain" / setting / "metrics.json").read_text())
        assert metrics["profile"] == "smoke"

    transfer = OmegaConf.load(work / "params.yaml").transfer
    for setting, spec in transfer.items():
        _, info = read_dataset(work / "data/datasets" / setting, setting=setting)
        assert list(info.tasks.values()) == list(spec.tasks)
        assert (work / "data/translators" / setting / "seed0.pt").is_file()
        metrics = json.loads((work / "reports/metrics" / f"transfer_{setting}.json").read_text())
        assert metrics["profile"] == "smoke" and metrics["pair"] == list(spec.pair)
        assert len(metrics["fig5"]["improvement_pct"]) == len(spec.tasks)
        assert (work / "reports/figures" / f"fig5_{setting}.png").read_bytes().startswith(b"\x89PNG")
    assert "HalfCheetah" in (work / "reports/tables/table1.md").read_text()

    runs = OmegaConf.load(work / "params.yaml").meta_train
    for setting in runs.settings:
        for method in runs.methods:
            for folder, delay in (
                (f"reports/meta/{setting}/{method}", raw.delay),
                (f"reports/meta/delay-200/{setting}/{method}", 200),
            ):
                metrics = json.loads((work / folder / "metrics.json").read_text())
                assert (metrics["method"], metrics["delay"], metrics["profile"]) == (method, delay, "smoke")
    table4 = (work / "reports/tables/table4.md").read_text()
    assert all(f"| {setting} | 200 | not run" not in table4 for setting in runs.settings)
    assert "delay 200" in table4  # the sweep's budget line

    dag = dvc(["dag"], work).stdout
    assert all(f"pretrain_source@{setting}" in dag for setting in settings)
    assert all(f"evaluate_transfer@{setting}" in dag for setting in transfer)
    status = dvc(["status"], work)
    assert "up to date" in status.stdout, status.stdout

    # every file a stage wrote is an output DVC knows (else a run-cache restore or checkout leaves it stale)
    lock = OmegaConf.to_container(OmegaConf.load(work / "dvc.lock"))
    declared = [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    files = [p for top in ("data", "reports") for p in (work / top).rglob("*") if p.is_file()]
    written = [p.relative_to(work).as_posix() for p in files]
    undeclared = [f for f in written if not any(f == d or f.startswith(f"{d}/") for d in declared)]
    assert not undeclared, f"written but not declared in dvc.yaml: {undeclared}"

    # one knob, as `dvc exp run -S 'meta_train.methods=[mcat]'` sets it: the dropped method's figure stage
    # leaves the DAG with its run (before the split, plot still declared that figure and DVC failed)
    raw.meta_train.methods = raw.meta_train.methods[:1]
    OmegaConf.save(raw, work / "params.yaml")
    result = dvc(["repro"], work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Running stage 'meta_train@" not in result.stdout  # the kept runs are not retrained
    assert "Running stage 'plot_fig3@" in result.stdout  # Fig. 3 now shows one method
    stages = dvc(["stage", "list", "--name-only"], work).stdout.split()
    dropped = runs.methods[1:]
    assert dropped and not any(stage.endswith(f"-{method}") for stage in stages for method in dropped)


STAGES = OmegaConf.to_container(OmegaConf.load(ROOT / "dvc.yaml").stages)
METHOD_DEPS = "data/methods/${item.method}.json"  # a method's own params and code (stage check_params)


def _stage_module(stage: dict) -> str:
    cmd = (stage.get("do") or stage)["cmd"]
    return cmd.split("python -m ")[1].split()[0]


def _code_deps(stage: dict) -> list[str]:
    """The stage's deps under pipeline/ and stages/ (comments stripped)."""
    deps = [d.split("#")[0].strip() for d in (stage.get("do") or stage)["deps"]]
    return [d for d in deps if d == "pipeline" or d.startswith(("pipeline/", "stages/"))]


def _imported_files(*modules: str) -> set[str]:
    """The files under pipeline/ and stages/ (but __init__.py) that importing `modules` imports, in a fresh process."""
    code = (
        f"import sys, {', '.join(modules)}\n"
        "for module in list(sys.modules.values()):\n"
        "    print(getattr(module, '__file__', None) or '')"
    )
    files = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    project_files = (Path(f).resolve() for f in files.split() if Path(f).name != "__init__.py")
    return {
        f.relative_to(ROOT).as_posix()
        for f in project_files
        if f.is_relative_to(ROOT / "pipeline") or f.is_relative_to(ROOT / "stages")
    }


def _covered(file: str, entries: list[str]) -> bool:
    return any(file == d or file.startswith(f"{d}/") for d in entries)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_every_project_module_it_imports(name: str) -> None:
    """A module the stage imports but dvc.yaml does not list would not rerun the stage when edited."""
    stage = STAGES[name]
    imported = _imported_files(_stage_module(stage))
    uncovered = [f for f in sorted(imported) if not _covered(f, _code_deps(stage))]
    assert not uncovered, f"add to {name} deps in dvc.yaml: {uncovered}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_no_code_the_stage_does_not_import(name: str) -> None:
    """Every code folder or file a stage lists holds a module it imports: a stale dep reruns it for nothing."""
    stage = STAGES[name]
    imported = _imported_files(_stage_module(stage))
    unused = [d for d in _code_deps(stage) if not any(_covered(f, [d]) for f in imported)]
    assert not unused, f"remove from {name} deps in dvc.yaml (the stage imports nothing there): {unused}"


def _registered_methods() -> dict:
    from pipeline.methods.registry import methods

    return dict(methods())


@pytest.mark.parametrize("method", sorted(_registered_methods()))
@pytest.mark.parametrize("name", ["meta_train", "meta_delay"])
def test_a_methods_runs_depend_on_its_code_through_its_record_both_ways(name: str, method: str) -> None:
    """What a method's trainer imports beyond stage meta_train's deps is exactly its `code` (which stage
    check_params hashes into data/methods/<method>.json, a dep of its stages), and each entry is used."""
    from pipeline.methods.registry import code_files, get_method

    spec, stage = get_method(method), STAGES[name]
    assert METHOD_DEPS in [d.split("#")[0].strip() for d in stage["deps"]]
    assert isinstance(spec.trainer, str), "a built-in method names its trainer module"
    imported = _imported_files(_stage_module(stage), spec.trainer)
    uncovered = [f for f in sorted(imported) if not _covered(f, _code_deps(stage) + list(spec.code))]
    assert not uncovered, f"add to the `code` of {method} (pipeline/methods/{spec.family}/__init__.py): {uncovered}"
    beyond_stage = {f for f in imported if not _covered(f, _code_deps(stage))}
    unused = [entry for entry in spec.code if not any(_covered(f, [entry]) for f in beyond_stage)]
    assert not unused, (
        f"remove from the `code` of {method} (stage meta_train already depends on it, or unused): {unused}"
    )
    assert code_files(spec)  # every entry exists


@pytest.mark.slow
def test_the_plot_stages_declare_the_figures_params_ask_for(tmp_path: Path) -> None:
    """Other meta_train methods and settings (`dvc exp run -S ...`) change the declared figures with them."""
    from dvc.repo import Repo

    from pipeline.config import load_params
    from stages.plot import figure_names

    raw = OmegaConf.load(ROOT / "params.yaml")
    raw.meta_train.methods = ["mcat", "mcat_no_sil"]
    raw.meta_train.settings = [*raw.meta_train.settings, "hopper-size"]
    OmegaConf.save(raw, tmp_path / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", tmp_path)
    assert dvc(["init", "--no-scm", "-q"], tmp_path).returncode == 0
    with Repo(str(tmp_path)) as repo:
        outs = {stage.name: [out.def_path for out in stage.outs] for stage in repo.index.stages}
    figures = [path for stage, paths in outs.items() if stage.startswith("plot_") for path in paths]
    expected = [f"reports/{name}" for name in figure_names(load_params(tmp_path / "params.yaml"))]
    assert sorted(figures) == sorted(expected) and "reports/figures/embeddings_hopper-size_mcat_no_sil.png" in figures
    assert not any(path.startswith("reports/figures/") for path in outs["plot"])
    assert {"reports/figures", "reports/metrics", "reports/meta"} <= set(STAGES["plot"]["deps"])  # after the figures
    # each figure's stage depends on the summaries it reads (so a figure reruns when, and only when, they change)
    assert "reports/metrics/transfer_${key}.json" in STAGES["plot_fig5"]["do"]["deps"]
    assert "reports/meta/${item.setting}" in STAGES["plot_fig3"]["deps"]
    assert "reports/meta/${item.setting}/${item.method}/embeddings.csv" in STAGES["plot_embeddings"]["deps"]


@pytest.mark.slow
def test_one_methods_params_or_code_reruns_its_stages_only(tmp_path: Path, smoke_params: Path) -> None:
    """A second method family (the toy of tests/toy_method.py, added as a folder and a params block): editing one
    method's params or code makes its meta_train stage, and not the other's, out of date."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", work)
    (work / "pipeline/methods/toy").mkdir()
    shutil.copy(ROOT / "tests/toy_method.py", work / "pipeline/methods/toy/__init__.py")
    raw = OmegaConf.load(smoke_params)
    raw.meta_train.methods = ["mcat", "toy"]
    raw.toy = {"action": 0.5}
    for key, value in {"meta_steps": 500, "meta_start_steps": 100, "meta_retrain_every": 250}.items():
        raw.budgets.smoke[key] = value
    OmegaConf.save(raw, work / "params.yaml")
    setting = raw.meta_train.settings[0]
    stages = [f"meta_train@{setting}-{method}" for method in ("mcat", "toy")]
    assert dvc(["init", "--no-scm", "-q"], work).returncode == 0
    result = dvc(["repro", *stages], work)
    assert result.returncode == 0, result.stdout + result.stderr

    def out_of_date(edit_file: str, old: str, new: str) -> set[str]:
        """The methods whose meta_train stage is out of date once `old` is replaced by `new` in `edit_file`."""
        path = work / edit_file
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
        try:
            assert dvc(["repro", "check_params"], work).returncode == 0
            status = dvc(["status", *stages], work).stdout
        finally:
            path.write_text(text)
            assert dvc(["repro", "check_params"], work).returncode == 0
        return {method for method in ("mcat", "toy") if f"meta_train@{setting}-{method}:" in status}

    assert out_of_date("params.yaml", "action: 0.5", "action: 0.25") == {"toy"}
    assert out_of_date("params.yaml", "alpha: 0.6", "alpha: 0.5") == {"mcat"}  # sil: MCAT's block
    assert out_of_date("params.yaml", "z_dim: 10", "z_dim: 8") == {"mcat"}  # context: a shared block MCAT reads
    assert out_of_date("pipeline/methods/toy/__init__.py", '"""A toy', '"""A tiny toy') == {"toy"}
    assert out_of_date("pipeline/methods/mcat/loop.py", '"""MCAT', '"""MCAT,') == {"mcat"}
    assert out_of_date("pipeline/agents/td3.py", '"""', '""" ') == {"mcat"}  # TD3: MCAT's code, not the toy's
    assert out_of_date("pipeline/agents/sac.py", '"""', '""" ') == set()  # PEARL's SAC: neither's code
    assert out_of_date("pipeline/methods/protocol.py", '"""', '""" ') == {"mcat", "toy"}  # the stage's own code
    assert dvc(["status", *stages], work).stdout.strip().endswith("up to date.")
