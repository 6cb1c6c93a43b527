"""Hopper of another size, rebuilt from its geometry so that masses and inertias follow.

The task parameter `size` is the torso capsule radius (0.05 in the stock Hopper-v5). Two ways
to make a hopper of that size (see docs/settings.md):

- `radius_only` (the paper's, the authors' size XMLs): the capsule radii change, torso and thigh
  to `size`, the leg to 0.8 x size and the foot to 1.2 x size (the stock proportions), while link
  lengths and positions stay. Mass grows with the radius squared.
- `whole_body`: the whole body scaled uniformly by `size / 0.05` (geom sizes and positions, body
  and joint positions, the root height); mass grows with the cube of the scale.

Either way the model is recompiled and MuJoCo recomputes masses and inertias from the geometry
(`inertiafromgeom`, constant density): editing `model.geom_size` at run time would leave the
stock masses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv

STOCK_SIZE = 0.05
STOCK_HEALTHY_Z = 0.7
# capsule radius of each geom over the torso's, in the stock model and the authors' XMLs
RADIUS_RATIO = {"torso_geom": 1.0, "thigh_geom": 1.0, "leg_geom": 0.8, "foot_geom": 1.2}
SCALINGS = ("radius_only", "whole_body")
_STOCK_XML = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / "hopper.xml"


def radius_hopper_spec(size: float) -> mujoco.MjSpec:
    """The stock Hopper-v5 model with the capsule radii set from `size`, lengths unchanged."""
    spec = mujoco.MjSpec.from_file(str(_STOCK_XML))
    for geom in spec.geoms:
        if geom.name in RADIUS_RATIO:
            geom.size = np.array([RADIUS_RATIO[geom.name] * size, *np.asarray(geom.size)[1:]])
    return spec


def scaled_hopper_spec(size: float) -> mujoco.MjSpec:
    """The stock Hopper-v5 model scaled uniformly by `size / STOCK_SIZE` (the floor excepted)."""
    scale = size / STOCK_SIZE
    spec = mujoco.MjSpec.from_file(str(_STOCK_XML))
    for body in spec.bodies:
        if body.name == "world":
            continue
        body.pos = np.asarray(body.pos) * scale
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_PLANE:
            continue
        geom.size = np.asarray(geom.size) * scale
        geom.pos = np.asarray(geom.pos) * scale
    for joint in spec.joints:
        joint.pos = np.asarray(joint.pos) * scale
        if joint.type == mujoco.mjtJoint.mjJNT_SLIDE:
            joint.ref = joint.ref * scale
    for camera in spec.cameras:
        camera.pos = np.asarray(camera.pos) * scale
    return spec


def hopper_xml(size: float, scaling: str = "radius_only") -> str:
    if scaling not in SCALINGS:
        raise ValueError(f"hopper scaling must be one of {SCALINGS}, got {scaling!r}")
    spec = radius_hopper_spec(size) if scaling == "radius_only" else scaled_hopper_spec(size)
    spec.compile()
    return spec.to_xml()


class HopperSizeEnv(HopperEnv):
    """Hopper-v5 rebuilt at `size` (see the module docstring for `scaling`).

    With `whole_body`, the default `healthy_z_range` scales with the body; with `radius_only` the
    link lengths, hence the stock healthy height, stay."""

    def __init__(self, size: float = STOCK_SIZE, scaling: str = "radius_only", **kwargs: Any):
        self._size = float(size)
        self._model_xml = hopper_xml(self._size, scaling)
        if scaling == "whole_body":
            kwargs.setdefault("healthy_z_range", (STOCK_HEALTHY_Z * self._size / STOCK_SIZE, float("inf")))
        super().__init__(**kwargs)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = mujoco.MjModel.from_xml_string(self._model_xml)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)
