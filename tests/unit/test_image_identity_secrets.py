"""The image identity cannot depend on a secret: nothing secret reaches plan_image."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

from linuxkit_swarm import image_plan
from linuxkit_swarm.settings import ImageSettings, Secret


def _mentions(hint: Any, target: type) -> bool:
    return hint is target or any(_mentions(arg, target) for arg in typing.get_args(hint))


def test_plan_image_takes_only_the_image_settings() -> None:
    params = list(inspect.signature(image_plan.plan_image).parameters.values())
    assert [(p.name, p.annotation) for p in params] == [("image", "ImageSettings")]


def test_the_image_settings_hold_no_secret() -> None:
    # The identity (imageHash, the ISO name, guestinfo's image key) is a hash of the
    # rendered definition and its files, all from ImageSettings: no secret field there
    # means no secret can change the identity or be rendered into the YAML.
    hints = typing.get_type_hints(ImageSettings)
    assert {f.name for f in dataclasses.fields(ImageSettings)} == set(hints)
    assert [name for name, hint in hints.items() if _mentions(hint, Secret)] == []
    # The check itself can fail: a Secret field is seen, also inside Optional.
    assert _mentions(Secret | None, Secret) and _mentions(typing.Optional[Secret], Secret)  # noqa: UP045
