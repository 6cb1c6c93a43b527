"""Task families: each task changes the physics (and only the physics) of a stock Gymnasium env."""

import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from pipeline.envs import SETTINGS, DelayedReward, check_task, make_env, make_raw_env

# Two different tasks per setting; the first differs from the second in the physics only.
TASK_PAIRS = {
    "halfcheetah-armature": (0.1, 0.5),
    "halfcheetah-mass": (1.0, 1.5),
    "ant-damping": (1.0, 2.0),
    "ant-cripple": (None, 2),
    "hopper-size": (0.04, 0.06),
}
DIFFERENT_TASKS = [(s, a, b) for s, (a, b) in TASK_PAIRS.items()] + [("ant-cripple", 0, 1)]
ALL_TASKS = sorted(
    {(s, t) for s, pair in TASK_PAIRS.items() for t in pair}
    | {("ant-cripple", leg) for leg in range(4)}
    | {("hopper-size", 0.05)},
    key=repr,
)
OBS_DIM = {
    "halfcheetah-armature": 17,
    "halfcheetah-mass": 17,
    "ant-damping": 27,
    "ant-cripple": 27,
    "hopper-size": 11,
}
# One non-stock task per setting, to check that a rebuilt env keeps it.
NON_STOCK_TASK = {
    "halfcheetah-armature": 0.37,
    "halfcheetah-mass": 1.3,
    "ant-damping": 2.0,
    "ant-cripple": 2,
    "hopper-size": 0.06,
}

N_STEPS = 80
STOCK_HOPPER_SIZE = 0.05


def task_id(value):
    return repr(value)


def rollout(env, seed=0, n_steps=N_STEPS):
    """Observations (reset one included) and rewards of a fixed seeded action sequence."""
    obs, _ = env.reset(seed=seed)
    space = env.action_space
    actions = np.random.default_rng(seed).uniform(space.low, space.high, size=(n_steps, *space.shape))
    observations, rewards = [obs], []
    for action in actions.astype(space.dtype):
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards)


def model_of(setting, task):
    return make_env(setting, task).unwrapped.model


def stock_model(setting):
    return make_raw_env(setting).unwrapped.model


# --- tasks differ, a task is reproducible -----------------------------------------------


@pytest.mark.parametrize(("setting", "task_a", "task_b"), DIFFERENT_TASKS, ids=lambda v: repr(v))
def test_different_tasks_give_different_trajectories(setting, task_a, task_b):
    obs_a, _ = rollout(make_env(setting, task_a, max_episode_steps=N_STEPS))
    obs_b, _ = rollout(make_env(setting, task_b, max_episode_steps=N_STEPS))
    assert obs_a.shape != obs_b.shape or not np.allclose(obs_a, obs_b)


@pytest.mark.parametrize(("setting", "task"), ALL_TASKS, ids=task_id)
def test_same_task_gives_identical_trajectories(setting, task):
    obs_a, rewards_a = rollout(make_env(setting, task, max_episode_steps=N_STEPS))
    obs_b, rewards_b = rollout(make_env(setting, task, max_episode_steps=N_STEPS))
    assert np.array_equal(obs_a, obs_b)
    assert np.array_equal(rewards_a, rewards_b)


# --- gymnasium API and spaces -----------------------------------------------------------


@pytest.mark.parametrize(("setting", "task"), ALL_TASKS, ids=task_id)
def test_env_checker_passes(setting, task):
    env = make_env(setting, task, delay=3, max_episode_steps=N_STEPS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r".*A Box observation space (minimum|maximum) value is")
        warnings.filterwarnings("ignore", message=r".*is different from the unwrapped version")
        check_env(env, skip_render_check=True)
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("setting", SETTINGS)
def test_spaces_are_the_stock_ones_for_every_task(setting):
    stock = make_raw_env(setting)
    for task in TASK_PAIRS[setting]:
        env = make_env(setting, task)
        assert env.observation_space.shape == (OBS_DIM[setting],)
        assert env.observation_space == stock.observation_space
        assert env.action_space == stock.action_space
        obs, _ = env.reset(seed=0)
        assert obs.shape == (OBS_DIM[setting],)


# --- the physics of each family -----------------------------------------------------------


@pytest.mark.parametrize("size", [0.04, STOCK_HOPPER_SIZE, 0.06])
def test_hopper_size_scales_mass_as_cube(size):
    stock_mass = gymnasium.make("Hopper-v5").unwrapped.model.body_mass.sum()
    total = model_of("hopper-size", size).body_mass.sum()
    assert total == pytest.approx(stock_mass * (size / STOCK_HOPPER_SIZE) ** 3, rel=1e-6)


def test_hopper_mass_grows_with_size():
    totals = [model_of("hopper-size", size).body_mass.sum() for size in (0.03, 0.04, 0.05, 0.06, 0.08)]
    assert np.all(np.diff(totals) > 0)


def test_hopper_stock_size_is_stock_hopper():
    stock = gymnasium.make("Hopper-v5").unwrapped.model
    model = model_of("hopper-size", STOCK_HOPPER_SIZE)
    assert model.body_mass.sum() == pytest.approx(stock.body_mass.sum(), rel=1e-12)
    np.testing.assert_allclose(model.body_mass, stock.body_mass, rtol=1e-12)
    np.testing.assert_allclose(model.body_inertia, stock.body_inertia, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.geom_size, stock.geom_size, rtol=1e-12)


@pytest.mark.parametrize("size", [0.04, 0.06])
def test_hopper_size_scales_geometry_and_healthy_height(size):
    scale = size / STOCK_HOPPER_SIZE
    stock = gymnasium.make("Hopper-v5").unwrapped.model
    env = make_env("hopper-size", size).unwrapped
    model = env.model

    def geom_size(m, name):
        return m.geom_size[m.geom(name).id]

    assert geom_size(model, "torso_geom")[0] == pytest.approx(size, rel=1e-12)
    # capsule half-length: the link length follows the radius
    assert geom_size(model, "thigh_geom")[1] == pytest.approx(geom_size(stock, "thigh_geom")[1] * scale, rel=1e-12)
    assert model.qpos0[1] == pytest.approx(stock.qpos0[1] * scale, rel=1e-12)
    assert env._healthy_z_range[0] == pytest.approx(0.7 * scale, rel=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_halfcheetah_mass_scales_every_body(scale):
    stock = stock_model("halfcheetah-mass")
    model = model_of("halfcheetah-mass", scale)
    np.testing.assert_allclose(model.body_mass, stock.body_mass * scale, rtol=1e-12)
    np.testing.assert_allclose(model.body_inertia, stock.body_inertia * scale, rtol=1e-12)


@pytest.mark.parametrize("armature", [0.1, 0.5])
def test_halfcheetah_armature_sets_joint_armature(armature):
    model = model_of("halfcheetah-armature", armature)
    assert np.all(model.dof_armature[:3] == 0)
    assert np.all(model.dof_armature[3:] == armature)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_ant_damping_follows_cadms_dof_pattern_leg_1_by_s_legs_2_to_4_by_its_inverse(scale):
    stock = stock_model("ant-damping").dof_damping
    damping = model_of("ant-damping", scale).dof_damping
    np.testing.assert_array_equal(damping[:6], stock[:6])  # the free root joint: undamped
    assert (stock[6:] > 0).all()
    np.testing.assert_allclose(damping[6:8], stock[6:8] * scale, rtol=1e-12)  # leg 1 (hip_1, ankle_1)
    np.testing.assert_allclose(damping[8:14], stock[8:14] / scale, rtol=1e-12)  # legs 2-4


@pytest.mark.parametrize("leg", [None, 0, 1, 2, 3])
def test_ant_cripple_zeroes_the_legs_actuators(leg):
    stock_gear = stock_model("ant-cripple").actuator_gear[:, 0]
    model = model_of("ant-cripple", leg)
    joints = [model.joint(j).name for j in model.actuator_trnid[:, 0]]
    crippled = set() if leg is None else {f"hip_{leg + 1}", f"ankle_{leg + 1}"}
    assert len(crippled & set(joints)) == len(crippled)
    for joint, gear, stock in zip(joints, model.actuator_gear[:, 0], stock_gear, strict=True):
        assert gear == (0.0 if joint in crippled else stock), joint
        assert stock != 0


# --- invalid tasks ----------------------------------------------------------------------


def test_unknown_setting_lists_allowed_settings():
    for build in (lambda: check_task("walker-mass", 1.0), lambda: make_env("walker-mass", 1.0)):
        with pytest.raises(ValueError, match="walker-mass") as info:
            build()
        assert all(setting in str(info.value) for setting in SETTINGS)


@pytest.mark.parametrize(
    ("setting", "task", "named"),
    [
        ("halfcheetah-armature", -0.1, "armature"),
        ("halfcheetah-mass", 0, "mass"),
        ("halfcheetah-mass", 0.0, "mass"),
        ("ant-damping", -1.0, "damping"),
        ("ant-cripple", 4, "leg"),
        ("ant-cripple", -1, "leg"),
        ("ant-cripple", "a", "leg"),
        ("ant-cripple", True, "leg"),
        ("hopper-size", math.nan, "hopper-size"),
        ("hopper-size", math.inf, "hopper-size"),
        ("hopper-size", None, "hopper-size"),
    ],
    ids=repr,
)
def test_bad_task_is_rejected(setting, task, named):
    with pytest.raises(ValueError, match=named):
        check_task(setting, task)
    with pytest.raises(ValueError, match=named):
        make_env(setting, task)


# --- rebuilding from the spec -----------------------------------------------------------

PHYSICS_FIELDS = ("body_mass", "body_inertia", "dof_armature", "dof_damping", "actuator_gear", "geom_size", "qpos0")


@pytest.mark.parametrize("setting", SETTINGS)
def test_spec_make_rebuilds_physics_and_delay(setting):
    env = make_env(setting, NON_STOCK_TASK[setting], delay=5, max_episode_steps=40)
    rebuilt = env.spec.make()
    assert isinstance(rebuilt, DelayedReward)
    assert rebuilt.delay == 5
    assert rebuilt.spec.max_episode_steps == 40
    for name in PHYSICS_FIELDS:
        assert np.array_equal(getattr(rebuilt.unwrapped.model, name), getattr(env.unwrapped.model, name)), name
    for a, b in zip(rollout(env, n_steps=40), rollout(rebuilt, n_steps=40), strict=True):
        assert np.array_equal(a, b)


def test_spec_make_keeps_armature_value():
    rebuilt = make_env("halfcheetah-armature", 0.37, delay=2).spec.make()
    assert np.all(rebuilt.unwrapped.model.dof_armature[3:] == 0.37)


def test_default_episode_length_is_stock():
    assert make_env("halfcheetah-mass", 1.0).spec.max_episode_steps == 1000
