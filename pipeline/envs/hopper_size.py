"""Hopper whose body is rebuilt at another size, so masses, inertias and lengths follow.

The task parameter `size` is the torso capsule radius (0.05 in the stock Hopper-v5). The
authors' size XMLs set the torso and thigh radius to `size`, the leg to 0.8 x size and the
foot to 1.2 x size, which is the stock model's proportion; we scale the whole body by
`size / 0.05` (geom sizes and positions, body and joint positions, the root height), so link
lengths follow the radius and MuJoCo recomputes masses and inertias from the geometry
(`inertiafromgeom`, constant density): mass grows as the cube of the scale. Editing
`model.geom_size` at run time would leave masses and link lengths at the stock values.
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
_STOCK_XML = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / "hopper.xml"


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


def scaled_hopper_xml(size: float) -> str:
    spec = scaled_hopper_spec(size)
    spec.compile()
    return spec.to_xml()


class HopperSizeEnv(HopperEnv):
    """Hopper-v5 with the body scaled to `size`; `healthy_z_range` scales with it."""

    def __init__(self, size: float = STOCK_SIZE, **kwargs: Any):
        self._size = float(size)
        self._model_xml = scaled_hopper_xml(self._size)
        scale = self._size / STOCK_SIZE
        kwargs.setdefault("healthy_z_range", (STOCK_HEALTHY_Z * scale, float("inf")))
        super().__init__(**kwargs)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = mujoco.MjModel.from_xml_string(self._model_xml)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)
