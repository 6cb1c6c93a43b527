"""Transferred policies: per-env members of a batched TD3, translators applied on their routes only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.agents.td3 import TD3
from pipeline.agents.td3_config import TD3Config
from pipeline.transfer.policy import Route, member_actions, routed_policy

OBS, ACT, SEEDS = 5, 3, 3
LOW, HIGH = np.full(ACT, -2.0, np.float32), np.full(ACT, 2.0, np.float32)
MEMBERS = [2, 0, 1, 1, 0, 2]  # env e is driven by member MEMBERS[e]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def agent() -> TD3:
    return TD3(OBS, ACT, LOW, HIGH, TD3Config(hidden=16), n_seeds=SEEDS)


@pytest.fixture
def obs() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(len(MEMBERS), OBS))  # float64, as envs return


def reference(agent: TD3, members: list[int], obs: np.ndarray) -> np.ndarray:
    """Member m's action on one observation, via select_action (every member on that observation)."""
    return np.stack([agent.select_action(np.repeat(o[None], SEEDS, 0))[m] for m, o in zip(members, obs, strict=True)])


class Negate(nn.Module):
    """A translator with parameters: its output would need a graph if the policy built one."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return -self.weight * actions


def test_members_differ(agent: TD3, obs: np.ndarray) -> None:
    """Otherwise picking the wrong member would go unnoticed."""
    per_member = agent.select_action(np.repeat(obs[:1], SEEDS, 0))
    assert not np.allclose(per_member[0], per_member[1]) and not np.allclose(per_member[1], per_member[2])


def test_member_actions_row_e_is_member_e_on_obs_e(agent: TD3, obs: np.ndarray) -> None:
    actions = member_actions(agent, np.array(MEMBERS), obs)
    assert isinstance(actions, torch.Tensor) and actions.shape == (len(MEMBERS), ACT)
    np.testing.assert_allclose(actions.numpy(), reference(agent, MEMBERS, obs), rtol=1e-5, atol=1e-6)


def test_member_actions_of_one_member_everywhere(agent: TD3, obs: np.ndarray) -> None:
    for m in range(SEEDS):
        expected = agent.act(torch.as_tensor(obs, dtype=torch.float32).expand(SEEDS, *obs.shape))[m]
        torch.testing.assert_close(member_actions(agent, np.full(len(obs), m), obs), expected)


def test_without_routes_the_policy_is_the_members_policy(agent: TD3, obs: np.ndarray) -> None:
    actions = routed_policy(agent, MEMBERS, [])(obs)
    assert isinstance(actions, np.ndarray) and actions.shape == (len(MEMBERS), ACT)
    np.testing.assert_allclose(actions, reference(agent, MEMBERS, obs), rtol=1e-5, atol=1e-6)


def test_translators_apply_only_to_their_envs(agent: TD3, obs: np.ndarray) -> None:
    def first_state_dims(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return states[:, :ACT]

    routes = [Route(np.array([1, 3]), lambda s, a: -a), Route(np.array([4]), first_state_dims)]
    actions = routed_policy(agent, MEMBERS, routes)(obs)
    plain = reference(agent, MEMBERS, obs)
    np.testing.assert_allclose(actions[[1, 3]], -plain[[1, 3]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(actions[4], obs[4, :ACT].astype(np.float32), rtol=0, atol=0)
    np.testing.assert_allclose(actions[[0, 2, 5]], plain[[0, 2, 5]], rtol=1e-5, atol=1e-6)


def test_translators_see_their_envs_states_and_actions(agent: TD3, obs: np.ndarray) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        seen.append((states.clone(), actions.clone()))
        return actions

    routed_policy(agent, MEMBERS, [Route(np.array([5, 0]), record)])(obs)
    (states, actions), plain = seen[0], reference(agent, MEMBERS, obs)
    np.testing.assert_array_equal(states.numpy(), obs[[5, 0]].astype(np.float32))
    np.testing.assert_allclose(actions.numpy(), plain[[5, 0]], rtol=1e-5, atol=1e-6)


def test_translator_modules_run_without_a_graph(agent: TD3, obs: np.ndarray) -> None:
    actions = routed_policy(agent, MEMBERS, [Route(np.arange(len(MEMBERS)), Negate())])(obs)
    np.testing.assert_allclose(actions, -reference(agent, MEMBERS, obs), rtol=1e-5, atol=1e-6)


def test_a_route_without_envs_changes_nothing(agent: TD3, obs: np.ndarray) -> None:
    actions = routed_policy(agent, MEMBERS, [Route(np.zeros(0, np.int64), lambda s, a: -a)])(obs)
    np.testing.assert_allclose(actions, reference(agent, MEMBERS, obs), rtol=1e-5, atol=1e-6)


def test_an_env_on_two_routes_is_rejected(agent: TD3) -> None:
    routes = [Route(np.array([0, 2]), lambda s, a: -a), Route(np.array([2, 3]), lambda s, a: a)]
    with pytest.raises(ValueError, match="more than one route"):
        routed_policy(agent, MEMBERS, routes)
