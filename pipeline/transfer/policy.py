"""Transferred policies: a task's good policy whose actions go through a translator, many envs at once.

Env e is driven by member `members[e]` of a batched TD3 (one good policy per task); a route sends
some envs' actions through a translator: ã = H(s, π_j(s), ...) (paper Sec. 3.3). Envs on no
route act with the good policy itself (the "source policy on the target task").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from pipeline.agents.td3 import TD3

Translate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (states [R, obs], actions [R, act]) -> [R, act]


class Route(NamedTuple):
    envs: np.ndarray  # indices of the envs whose actions this translator maps
    translate: Translate


@torch.no_grad()
def member_actions(agent: TD3, members: np.ndarray, obs: np.ndarray) -> torch.Tensor:
    """Deterministic action of policy members[e] at obs[e], for every row e: [E, action_dim]."""
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=agent.device)
    actions = agent.act(x.expand(agent.n_seeds, *x.shape))  # every member on every row: cheap next to the envs
    return actions[torch.as_tensor(members, device=agent.device), torch.arange(len(x), device=agent.device)]


def routed_policy(agent: TD3, members: Sequence[int], routes: Sequence[Route]) -> Callable[[np.ndarray], np.ndarray]:
    """A batch policy obs [E, obs_dim] -> actions [E, action_dim] for `evaluation.evaluate_policies`."""
    members = np.asarray(members)
    routed = np.concatenate([r.envs for r in routes]) if routes else np.zeros(0, int)
    if len(np.unique(routed)) != len(routed):
        raise ValueError("an env is on more than one route")

    @torch.no_grad()
    def policy(obs: np.ndarray) -> np.ndarray:
        actions = member_actions(agent, members, obs)
        states = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=actions.device)
        for route in routes:
            rows = torch.as_tensor(route.envs, device=actions.device)
            actions[rows] = route.translate(states[rows], actions[rows])
        return actions.cpu().numpy()

    return policy
