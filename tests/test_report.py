"""Report tables and figures from hand-made evaluate_transfer summaries (reports/metrics/transfer_<setting>.json)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.report import figures
from pipeline.report.figures import fig5_heatmap
from pipeline.report.paper import TABLE1
from pipeline.report.tables import budget_line, table1_markdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metrics(setting: str = "halfcheetah-armature", tasks: list[Any] | None = None) -> dict[str, Any]:
    """A summary with the keys stage evaluate_transfer writes."""
    tasks = [0.1, 0.3, 0.5] if tasks is None else tasks
    n = len(tasks)
    improvement = np.arange(n * n, dtype=float).reshape(n, n) * 7.3 - 20.0
    return {
        "setting": setting,
        "profile": "smoke",
        "seeds": 3,
        "eval_episodes_per_seed": 4,
        "translator_fit": "5 x 20 updates",
        "translator_loss": "nll",
        "dataset_transitions_per_task": 1500,
        "policy_pretrain_steps": 2500,
        "pair": [tasks[0], tasks[-1]],
        "table1": {
            "source_policy": {"mean": 1234.56, "stderr": 12.34, "per_seed": [1200.0, 1234.0, 1269.68]},
            "ours": {"mean": 1500.04, "stderr": 7.06, "per_seed": [1490.0, 1500.0, 1510.12]},
            "zhang_et_al": {"mean": -88.88, "stderr": 0.96, "per_seed": [-90.0, -88.0, -88.64]},
            "ours_over_source": 1500.04 / 1234.56,
        },
        "fig5": {
            "tasks": tasks,
            "source_policy_return": np.full((n, n), 1000.0).tolist(),
            "transferred_return": (1000.0 + 10.0 * improvement).tolist(),
            "improvement_pct": improvement.tolist(),
            "improvement_pct_stderr": np.full((n, n), 2.5).tolist(),
            "pairs_improved": int((improvement > 0).sum()),
        },
        "wall_seconds": 12.3,
    }


def row_of(markdown: str, label: str) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {label} |")]
    assert len(rows) == 1, markdown
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def header(markdown: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith("| Setting"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_table1_row_holds_our_values_as_mean_pm_stderr() -> None:
    markdown = table1_markdown({"halfcheetah-armature": metrics()})
    cells = dict(zip(header(markdown), row_of(markdown, "HalfCheetah"), strict=True))
    assert cells["source -> target"] == "0.1 -> 0.5"
    assert cells["Source policy"] == "1234.6 ± 12.3"
    assert cells["Transferred (ours)"] == "1500.0 ± 7.1"
    assert cells["Transferred (Zhang et al.)"] == "-88.9 ± 1.0"
    assert cells["ours / source"] == "1.22"


def test_table1_ratio_is_not_shown_for_a_source_return_at_or_below_zero() -> None:
    summary = metrics()
    summary["table1"]["source_policy"]["mean"] = -151.0
    summary["table1"]["ours"]["mean"] = -2643.6
    summary["table1"]["ours_over_source"] = -2643.6 / -151.0  # 17.5: no improvement
    markdown = table1_markdown({"halfcheetah-armature": summary})
    cells = dict(zip(header(markdown), row_of(markdown, "HalfCheetah"), strict=True))
    assert cells["ours / source"] == "n/a (source <= 0)"


def test_table1_row_shows_the_paper_values_beside_ours() -> None:
    markdown = table1_markdown({"halfcheetah-armature": metrics(), "ant-cripple": metrics("ant-cripple", [None, 0])})
    for setting in ("halfcheetah-armature", "ant-cripple"):
        paper = TABLE1[setting]
        cells = dict(zip(header(markdown), row_of(markdown, paper.label), strict=True))
        (zhang, zhang_se), (ours, ours_se) = paper.zhang_et_al, paper.ours
        expected = f"{paper.source_policy:.1f} / {zhang:.1f} ± {zhang_se:.1f} / {ours:.1f} ± {ours_se:.1f}"
        assert cells["Paper: source / Zhang et al. / ours"] == expected
    assert row_of(markdown, "Ant")[1] == "None -> 0"


def test_paper_reference_values_are_the_published_table1() -> None:
    assert TABLE1["halfcheetah-armature"][1:4] == (2355.0, (3017.1, 44.2), (2937.2, 9.5))
    assert TABLE1["ant-cripple"][1:4] == (55.8, (97.2, 2.5), (208.1, 8.2))


def test_table1_says_when_the_papers_reward_is_not_ours() -> None:
    """The authors' Ant has no control cost and no early end; a reader must not compare returns across."""
    with_ant = table1_markdown({"halfcheetah-armature": metrics(), "ant-cripple": metrics("ant-cripple", [None, 0])})
    assert TABLE1["ant-cripple"].reward_note in with_ant
    assert "Ant-v5" in TABLE1["ant-cripple"].reward_note
    assert "Ant-v5" not in table1_markdown({"halfcheetah-armature": metrics()})
    assert "Meta-World rows (Cylinder-Mug, Cylinder-Cube) are not run" in with_ant


def test_table1_row_states_the_budget() -> None:
    markdown = table1_markdown({"halfcheetah-armature": metrics()})
    budget = dict(zip(header(markdown), row_of(markdown, "HalfCheetah"), strict=True))["Budget"]
    assert budget == budget_line(metrics())
    for part in ("profile `smoke`", "2500 TD3 steps", "1500 transitions", "5 x 20 updates", "3 seed(s) x 4 episodes"):
        assert part in budget
    assert "(H's loss nll)" in budget
    older = {k: v for k, v in metrics().items() if k != "translator_loss"}  # summaries from before the key
    assert "loss" not in budget_line(older) and "5 x 20 updates" in budget_line(older)


def test_a_setting_not_in_the_paper_is_marked_and_named() -> None:
    assert "hopper-size" not in TABLE1
    markdown = table1_markdown({"hopper-size": metrics("hopper-size", [0.05, 0.07])})
    cells = dict(zip(header(markdown), row_of(markdown, "hopper-size"), strict=True))
    assert cells["Paper: source / Zhang et al. / ours"] == "(not in paper)"
    assert cells["Source policy"] == "1234.6 ± 12.3"


def test_table1_has_one_row_per_setting_in_order() -> None:
    results = {s: metrics(s) for s in ("ant-cripple", "hopper-size", "halfcheetah-armature")}
    lines = table1_markdown(results).splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| Setting")]
    assert [row.split("|")[1].strip() for row in rows] == ["Ant", "hopper-size", "HalfCheetah"]
    width = len(header(table1_markdown(results)))
    assert all(len(row.strip("|").split("|")) == width for row in rows)


def read_png(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def with_improvement(values: np.ndarray) -> dict[str, Any]:
    m = copy.deepcopy(metrics())
    m["fig5"]["improvement_pct"] = values.tolist()
    return m


@pytest.mark.parametrize(
    "improvement",
    [
        np.arange(9.0).reshape(3, 3) * 7.3 - 20.0,
        np.zeros((3, 3)),
        np.array([[0.0, 1e12, -5.0], [3.0, 0.0, -1e9], [2.0, 40.0, 0.0]]),
        np.array([[0.0, np.inf, -5.0], [3.0, 0.0, -np.inf], [2.0, 40.0, 0.0]]),
    ],
    ids=["mixed", "all-zero", "huge", "infinite"],
)
def test_fig5_heatmap_writes_a_png_atomically(tmp_path: Path, improvement: np.ndarray) -> None:
    path = tmp_path / "figures" / "fig5_halfcheetah-armature.png"
    fig5_heatmap(path, with_improvement(improvement), "HalfCheetah (halfcheetah-armature)")
    image = read_png(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_fig5_heatmap_replaces_an_existing_figure(tmp_path: Path) -> None:
    path = tmp_path / "fig5.png"
    path.write_bytes(b"old")
    fig5_heatmap(path, metrics("ant-cripple", [None, 0, 1, 2]), "Ant (ant-cripple)")
    read_png(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_fig5_heatmap_shows_the_improvements_in_colour(tmp_path: Path) -> None:
    """Mixed signs give both ends of the diverging scale; all zeros give neither."""
    mixed, flat = tmp_path / "mixed.png", tmp_path / "flat.png"
    fig5_heatmap(mixed, with_improvement(np.array([[-100.0, 0.0, 100.0]] * 3)), "mixed")
    fig5_heatmap(flat, with_improvement(np.zeros((3, 3))), "flat")

    def saturated(path: Path) -> tuple[int, int]:
        rgb = read_png(path)[..., :3]
        reddish = (rgb[..., 0] - rgb[..., 2] > 0.2).sum()
        bluish = (rgb[..., 2] - rgb[..., 0] > 0.2).sum()
        return int(reddish), int(bluish)

    red, blue = saturated(mixed)
    assert red > 500 and blue > 500
    red_flat, blue_flat = saturated(flat)
    assert red_flat < red / 2 and blue_flat < blue / 2  # the colour bar still shows both ends


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every Figure fig5_heatmap makes, so a test can inspect what it drew."""
    made: list[Figure] = []

    class Recorded(Figure):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(figures, "Figure", Recorded)
    return made


@pytest.mark.parametrize(
    ("improvement", "limit"),
    [
        (np.array([[-30.0, 0.0, 12.0]] * 3), 30.0),
        (np.zeros((3, 3)), 1.0),
        (np.array([[0.0, 1e12, -5.0], [3.0, 0.0, -1e9], [2.0, 40.0, 0.0]]), 100.0),
    ],
    ids=["largest-magnitude", "all-zero", "huge"],
)
def test_fig5_colour_scale_is_centred_at_zero_and_clipped_at_100(
    tmp_path: Path, recorded: list[Figure], improvement: np.ndarray, limit: float
) -> None:
    fig5_heatmap(tmp_path / "fig5.png", with_improvement(improvement), "title")
    (image,) = recorded[0].axes[0].images
    assert (image.norm.vmin, image.norm.vcenter, image.norm.vmax) == (-limit, 0.0, limit)
    assert np.abs(image.get_array()).max() <= limit


@pytest.mark.parametrize("tasks", [[0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4, 0.5]], ids=["ant-4", "halfcheetah-5"])
def test_fig5_title_fits_in_the_figure(tmp_path: Path, recorded: list[Figure], tasks: list[Any]) -> None:
    m = metrics("ant-cripple", tasks)  # the default profile's budget, the tasks of params.yaml
    m |= {"profile": "default", "policy_pretrain_steps": 20000, "dataset_transitions_per_task": 10000}
    m |= {"translator_fit": "4 x 500 updates", "seeds": 3, "eval_episodes_per_seed": 5}
    fig5_heatmap(tmp_path / "fig5.png", m, "Ant (ant-cripple)")
    fig = recorded[0]
    title = fig.axes[0].title
    assert budget_line(m) in title.get_text().replace("\n", " ")  # wrapped onto lines
    extent = title.get_window_extent(FigureCanvasAgg(fig).get_renderer())
    assert fig.bbox.x0 <= extent.x0 and extent.x1 <= fig.bbox.x1, (extent, fig.bbox)


def test_table1_shows_paired_differences_bounds_and_reward_parts() -> None:
    m = metrics()
    m["table1"]["ours_minus_source"] = {"mean": 265.5, "stderr": 3.2}
    m["table1"]["ours_minus_zhang_et_al"] = {"mean": 1588.9, "stderr": 6.1}
    for name, share in (("source_policy", 0.34), ("ours", 0.41), ("zhang_et_al", 0.9)):
        m["table1"][name] |= {"at_bounds": share, "reward_parts": {"forward": 1500.0, "ctrl": -265.0}}
    m["task_definition"] = "paper"
    row = row_of(table1_markdown({"halfcheetah-armature": m}), "HalfCheetah")
    assert row[5:10] == ["265.5 ± 3.2", "1588.9 ± 6.1", "1.22", "34% / 41% / 90%", "1500 / -265; 1500 / -265"]
    assert "tasks `paper`" in row[-1]


def test_table1_without_diagnostics_says_not_available() -> None:
    row = row_of(table1_markdown({"halfcheetah-armature": metrics()}), "HalfCheetah")
    assert row[5:7] == ["n/a", "n/a"] and row[8:10] == ["n/a / n/a / n/a", "n/a; n/a"]


def test_ant_reward_note_only_for_summaries_on_gymnasium_v5_tasks() -> None:
    paper = metrics("ant-cripple", [0, 1, 2, 3]) | {"task_definition": "paper"}
    assert "Ant-v5" not in table1_markdown({"ant-cripple": paper})
    assert "Ant-v5" in table1_markdown({"ant-cripple": paper | {"task_definition": "gymnasium_v5"}})


def test_fig5_shows_near_zero_source_cells_as_return_differences() -> None:
    fig5 = metrics()["fig5"]
    source = np.array(fig5["source_policy_return"])
    source[0, 2] = 20.0  # policy 0 on task 2: near 0 next to task 2's own policy (1000)
    fig5["source_policy_return"] = source.tolist()
    _, _, difference, near_zero = figures.fig5_cells(fig5)
    assert near_zero.sum() == 1 and near_zero[0, 2]
    transferred = np.array(fig5["transferred_return"])
    assert difference[0, 2] == pytest.approx(transferred[0, 2] - 20.0)


def test_table1_says_per_row_how_far_ours_is_from_the_papers_effect() -> None:
    summary = metrics()  # Fig. 5 off the diagonal: -12.7, -5.4, 1.9, 16.5, 23.8, 31.1 (4 of 6 improved)
    summary["table1"]["ours_minus_source"] = {"mean": 161.2, "stderr": 33.8}
    summary["table1"]["ours_over_source"] = 1.07
    summary["table1"]["source_policy"]["mean"] = 2205.0
    line = next(
        x
        for x in table1_markdown({"halfcheetah-armature": summary}).splitlines()
        if x.startswith("- HalfCheetah: ours")
    )
    assert "ours - source 161.2 ± 33.8, 4.8 standard errors above the source" in line
    assert "ours / source 1.07 against the paper's 1.25" in line
    assert "Fig. 5: 4 of 6 off-diagonal pairs improved (67%; paper: most)" in line

    summary["table1"]["ours_minus_source"] = {"mean": -345.4, "stderr": 20.0}
    worse = table1_markdown({"halfcheetah-armature": summary})
    assert "ours - source -345.4 ± 20.0, not above the source" in worse
