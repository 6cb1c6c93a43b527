"""Task families: each task changes the physics (and only the physics) of a stock Gymnasium env."""

import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from pipeline.envs import DEFINITIONS, SETTINGS, DelayedReward, check_task, make_env, make_raw_env
from pipeline.envs.families import ANT_LEG_ACTUATORS

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


def model_of(setting, task, definition="paper"):
    return make_env(setting, task, definition=definition).unwrapped.model


def stock_model(setting, definition="paper"):
    return make_raw_env(setting, definition=definition).unwrapped.model


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


@pytest.mark.parametrize("definition", DEFINITIONS)
@pytest.mark.parametrize(("setting", "task"), ALL_TASKS, ids=task_id)
def test_env_checker_passes(setting, task, definition):
    env = make_env(setting, task, delay=3, max_episode_steps=N_STEPS, definition=definition)
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


@pytest.mark.parametrize("size", [0.04, 0.06])
def test_hopper_size_v5_scales_mass_as_cube(size):
    stock_mass = gymnasium.make("Hopper-v5").unwrapped.model.body_mass.sum()
    total = model_of("hopper-size", size, "gymnasium_v5").body_mass.sum()
    assert total == pytest.approx(stock_mass * (size / STOCK_HOPPER_SIZE) ** 3, rel=1e-6)


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_hopper_mass_grows_with_size(definition):
    totals = [model_of("hopper-size", size, definition).body_mass.sum() for size in (0.03, 0.04, 0.05, 0.06, 0.08)]
    assert np.all(np.diff(totals) > 0)


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_hopper_stock_size_is_stock_hopper(definition):
    stock = gymnasium.make("Hopper-v5").unwrapped.model
    model = model_of("hopper-size", STOCK_HOPPER_SIZE, definition)
    assert model.body_mass.sum() == pytest.approx(stock.body_mass.sum(), rel=1e-12)
    np.testing.assert_allclose(model.body_mass, stock.body_mass, rtol=1e-12)
    np.testing.assert_allclose(model.body_inertia, stock.body_inertia, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.geom_size, stock.geom_size, rtol=1e-12)


def geom_size(model, name):
    return model.geom_size[model.geom(name).id]


@pytest.mark.parametrize("size", [0.04, 0.06])
def test_hopper_size_v5_scales_geometry_and_healthy_height(size):
    scale = size / STOCK_HOPPER_SIZE
    stock = gymnasium.make("Hopper-v5").unwrapped.model
    env = make_env("hopper-size", size, definition="gymnasium_v5").unwrapped
    model = env.model
    assert geom_size(model, "torso_geom")[0] == pytest.approx(size, rel=1e-12)
    # capsule half-length: the link length follows the radius
    assert geom_size(model, "thigh_geom")[1] == pytest.approx(geom_size(stock, "thigh_geom")[1] * scale, rel=1e-12)
    assert model.qpos0[1] == pytest.approx(stock.qpos0[1] * scale, rel=1e-12)
    assert env._healthy_z_range[0] == pytest.approx(0.7 * scale, rel=1e-12)


@pytest.mark.parametrize("size", [0.03, 0.07])
def test_hopper_size_paper_changes_the_radii_only(size):
    """The authors' XMLs: torso and thigh radius s, leg 0.8 s, foot 1.2 s; lengths and positions stay."""
    stock = gymnasium.make("Hopper-v5").unwrapped.model
    model = model_of("hopper-size", size)
    for name, ratio in (("torso_geom", 1.0), ("thigh_geom", 1.0), ("leg_geom", 0.8), ("foot_geom", 1.2)):
        assert geom_size(model, name)[0] == pytest.approx(ratio * size, rel=1e-12), name
        assert geom_size(model, name)[1] == pytest.approx(geom_size(stock, name)[1], rel=1e-12), name
    np.testing.assert_allclose(model.body_pos, stock.body_pos, rtol=1e-12)
    np.testing.assert_allclose(model.qpos0, stock.qpos0, rtol=1e-12)
    # masses follow the geometry: a capsule of radius r and half-length h has volume pi r^2 (2h + 4r/3)
    torso = model.body("torso").id
    r, h = geom_size(model, "torso_geom")[:2]
    r0, h0 = geom_size(stock, "torso_geom")[:2]
    expected = stock.body_mass[torso] * (r**2 * (2 * h + 4 * r / 3)) / (r0**2 * (2 * h0 + 4 * r0 / 3))
    assert model.body_mass[torso] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_halfcheetah_mass_paper_scales_masses_only(scale):
    stock = stock_model("halfcheetah-mass")
    model = model_of("halfcheetah-mass", scale)
    np.testing.assert_allclose(model.body_mass, stock.body_mass * scale, rtol=1e-12)
    np.testing.assert_array_equal(model.body_inertia, stock.body_inertia)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_halfcheetah_mass_v5_scales_masses_and_inertias(scale):
    stock = stock_model("halfcheetah-mass", "gymnasium_v5")
    model = model_of("halfcheetah-mass", scale, "gymnasium_v5")
    np.testing.assert_allclose(model.body_mass, stock.body_mass * scale, rtol=1e-12)
    np.testing.assert_allclose(model.body_inertia, stock.body_inertia * scale, rtol=1e-12)


# --- the paper's reward and termination -------------------------------------------------

# (setting, task): the per-step constant and the control-cost weight of the authors' env
PAPER_REWARD = {
    ("ant-damping", 2.0): (0.05, 0.005),
    ("ant-cripple", 1): (0.05, 0.0),
    ("hopper-size", 0.04): (1.0, 0.001),
    ("halfcheetah-armature", 0.5): (0.0, 0.1),
    ("halfcheetah-mass", 1.5): (0.0, 0.1),
}


@pytest.mark.parametrize(("setting", "task"), PAPER_REWARD, ids=task_id)
def test_paper_reward_is_forward_velocity_plus_constant_minus_control_and_never_ends(setting, task):
    """1000 random steps (which topple Ant and Hopper): no early end; reward = forward velocity + the constant
    - weight |a|^2, with no contact cost."""
    constant, weight = PAPER_REWARD[(setting, task)]
    env = make_env(setting, task)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        _, reward, terminated, truncated, info = env.step(action)
        assert not terminated
        assert reward == pytest.approx(info["reward_forward"] + constant - weight * np.square(action).sum(), abs=1e-6)
        assert info["reward_forward"] == pytest.approx(info["x_velocity"], abs=1e-9)
        assert info.get("reward_contact", 0.0) == 0.0
    assert truncated


@pytest.mark.parametrize(("setting", "task"), [("ant-damping", 2.0), ("hopper-size", 0.04)], ids=task_id)
def test_gymnasium_v5_definition_ends_unhealthy_episodes(setting, task):
    env = make_env(setting, task, definition="gymnasium_v5")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    ended = False
    for _ in range(1000):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if terminated or truncated:
            ended = terminated
            break
    assert ended


def test_unknown_definition_names_the_allowed_ones():
    with pytest.raises(ValueError, match="gymnasium_v5"):
        make_env("halfcheetah-armature", 0.1, definition="v4")


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


@pytest.mark.parametrize("leg", [0, 3])
def test_ant_cripple_actions_on_the_crippled_leg_have_no_effect(leg):
    """The authors mask the crippled leg's actions to 0: any action there gives the same rollout."""
    env_a, env_b = make_env("ant-cripple", leg), make_env("ant-cripple", leg)
    env_a.reset(seed=3)
    env_b.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        action = rng.uniform(-1, 1, 8).astype(np.float32)
        other = action.copy()
        other[list(ANT_LEG_ACTUATORS[leg])] = rng.uniform(-1, 1, 2)
        obs_a, reward_a, *_ = env_a.step(action)
        obs_b, reward_b, *_ = env_b.step(other)
        assert np.array_equal(obs_a, obs_b) and reward_a == reward_b


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
