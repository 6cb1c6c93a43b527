"""The plot stage's parts: each writes its own file, as writing everything does; bad arguments name the param."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_params
from pipeline.report.figures import embedding_figure
from stages import plot

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the committed summaries with every table and figure written by `all`."""
    root = tmp_path_factory.mktemp("all")
    shutil.copytree(ROOT / "reports", root / "reports")
    shutil.rmtree(root / "reports" / "figures")
    shutil.rmtree(root / "reports" / "tables")
    plot.main(["--params", str(PARAMS), "--root", str(root)])
    return root


def written(root: Path) -> set[str]:
    return {p.relative_to(root / "reports").as_posix() for p in (root / "reports").rglob("*") if p.is_file()}


def test_each_part_writes_its_file_alone_as_all_writes_it(everything: Path, tmp_path: Path) -> None:
    params = load_params(PARAMS)
    figures = plot.figure_names(params, ROOT)  # less the per-task figures of runs without episode logs
    assert set(figures) | {f"tables/table{n}.md" for n in (1, 2, 3, 4)} | {"README.md"} <= written(everything)
    setting, method = params.meta_train.settings[0], params.meta_train.methods[-1]
    transfer = list(params.transfer)[-1]
    parts = {
        ("fig5", transfer): {f"figures/fig5_{transfer}.png", f"figures/transfer_fits_{transfer}.png"},
        ("fig3", setting): {f"figures/{kind}_{setting}.png" for kind in ("fig3", "train_tasks", "transfers")}
        if not plot.missing_episode_logs(params, ROOT, setting)
        else {f"figures/fig3_{setting}.png"},
        ("embeddings", setting, method): {f"figures/embeddings_{setting}_{method}.png"},
    }
    for args, names in parts.items():
        root = tmp_path / args[0]
        shutil.copytree(ROOT / "reports", root / "reports", ignore=shutil.ignore_patterns("figures", "tables"))
        before = written(root)
        plot.main(["--params", str(PARAMS), "--root", str(root), *args])
        assert written(root) - before == names
        for name in names:
            assert (root / "reports" / name).read_bytes() == (everything / "reports" / name).read_bytes()

    root = tmp_path / "tables"
    shutil.copytree(ROOT / "reports", root / "reports", ignore=shutil.ignore_patterns("figures", "tables"))
    plot.main(["--params", str(PARAMS), "--root", str(root), "tables"])
    assert not any(name.startswith("figures/") for name in written(root))
    for name in ("tables/table1.md", "tables/table4.md", "README.md"):
        assert (root / "reports" / name).read_text() == (everything / "reports" / name).read_text()
    assert all(f"![{name}]({name})" in (root / "reports" / "README.md").read_text() for name in figures)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fig5", "hopper-size"], "setting 'hopper-size' is not one of params transfer"),
        (["fig3"], "part 'fig3' needs a setting, one of params meta_train.settings"),
        (["embeddings", "halfcheetah-armature", "td3"], "method 'td3' is not one of params meta_train.methods"),
        (["tables", "halfcheetah-armature"], "part 'tables' takes no setting"),
        (["fig3", "halfcheetah-armature", "mcat"], "part 'fig3' takes no method"),
    ],
)
def test_a_bad_part_argument_exits_naming_the_param(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        plot.main(["--params", str(PARAMS), "--root", str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_a_run_without_embeddings_still_gets_its_figure_which_says_so(tmp_path: Path) -> None:
    params = load_params(PARAMS)
    setting, method = params.meta_train.settings[0], params.meta_train.methods[0]
    run = tmp_path / "reports" / "meta" / setting / method
    run.mkdir(parents=True)
    (run / "embeddings.csv").write_text("seed,task,z0,z1\n")  # no episode was longer than the context
    plot.main(["--params", str(PARAMS), "--root", str(tmp_path), "embeddings", setting, method])
    assert (tmp_path / "reports" / "figures" / f"embeddings_{setting}_{method}.png").read_bytes().startswith(b"\x89PNG")

    def notes(z: np.ndarray) -> list[str]:
        axes = embedding_figure(np.zeros(len(z), int), z, ["0.1"], "title").axes[0]
        return [text.get_text() for text in axes.texts]

    assert "no context embeddings" in " ".join(notes(np.zeros((0, 2))))
    assert notes(np.random.default_rng(0).normal(size=(8, 2))) == []
