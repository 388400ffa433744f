"""Demo-pack training on UTKFace (rules ``zoo_*`` in workflow/rules/zoo.smk, one module per rule).

``data`` aligns the faces, ``train`` and ``adversarial`` train the generator + encoder, ``directions`` fits the edit
directions, ``probe`` fits the attribute probe, ``publish`` copies the built pack (``stitch.packs.demo``) and the
probe into ``resources/``. Inference and evaluation never import this package: they read the shipped files.

Hyper-parameters live in the dataclasses of each module (``TrainConfig``, ...); ``config.yaml``'s ``zoo.<stage>``
section overrides them by field name (:func:`stage_config`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from stitch.errors import StitchError

T = TypeVar("T")


def stage_config(cls: type[T], settings: dict[str, Any] | None, stage: str, **fixed: Any) -> T:
    """``cls`` (a dataclass) from the config's ``zoo.<stage>`` section; ``fixed`` (e.g. threads) wins over it.

    An unknown key is a user error naming the section and the known fields.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    values = dict(settings or {})
    unknown = sorted(set(values) - names)
    if unknown:
        raise StitchError(f"config zoo.{stage}: unknown setting(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(names - set(fixed)))})")
    return cls(**{**values, **fixed})
