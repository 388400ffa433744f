"""One settings resolver: a video's value of every stage setting, and where it came from.

Layers, first non-null wins: the video's samples.tsv column ``<stage>_<key>`` (``sample``) > config.yaml
``<stage>.<key>`` (``config``) > the video's schedule preset (``schedule``, :data:`stitch.configs.SCHEDULES`) > the
model pack's ``defaults.<stage>.<key>`` (``pack``) > the stage dataclass's default in :mod:`stitch.configs`
(``default``). The schedule itself resolves the same way: column ``schedule`` > config ``schedule`` > the pack's
``defaults.schedule`` > ``reference``. Types and ranges come from the config schema
(``workflow/schemas/config.schema.yaml``), so a value is checked the same way whichever layer gives it, and every
number must be finite. A bad value is one line naming the file, the setting and what to do.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from stitch.configs import DEFAULT_SHARD_FRAMES, SCHEDULES, STAGES, defaults, field_types
from stitch.errors import StitchError

SOURCES = ("sample", "config", "schedule", "pack", "default")
#: samples.tsv columns that are not stage settings
BASE_COLUMNS = ("sample", "path", "faces", "pack", "schedule", "shard_frames")


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # one of SOURCES


def column(stage: str, key: str) -> str:
    """The samples.tsv column of a stage setting."""
    return f"{stage}_{key}"


def setting_columns() -> dict[str, tuple[str, str]]:
    """{samples.tsv column: (stage, key)} of every stage setting."""
    return {column(s, k): (s, k) for s in STAGES for k in defaults(s)}


def check_value(stage: str, key: str, value: Any, where: str, schema: Mapping | None = None) -> Any:
    """``value`` if it is finite and valid for ``<stage>.<key>`` under the config schema; else one-line StitchError."""
    name = f"{stage}.{key}"
    if isinstance(value, float) and not math.isfinite(value):
        raise StitchError(f"{where}: {name} = {value} is not a finite number; give a finite value or leave it empty")
    if schema is not None:
        sub = schema["properties"][stage]["properties"].get(key)
        if sub is None:
            raise StitchError(f"{where}: the config schema has no {name} (stitch.configs and the schema disagree)")
        try:
            jsonschema.validate(value, sub)
        except jsonschema.ValidationError as e:
            raise StitchError(f"{where}: {name} = {value!r}: {e.message}; fix the value or leave it empty") from None
    return value


def parse_cell(stage: str, key: str, raw: Any, where: str) -> Any:
    """A samples.tsv cell (a string, or None for an empty cell) as the setting's type."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == "":
        return None
    kind, text = field_types(stage)[key], str(raw).strip()
    try:
        if kind is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if kind is int:
            as_float = float(text)
            if not as_float.is_integer():
                raise ValueError
            return int(as_float)
        return kind(text)
    except ValueError:
        what = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "text")
        raise StitchError(f"{where}: column {column(stage, key)!r} = {text!r} is not {what}; "
                          f"write {what} or leave the cell empty") from None


def parse_sample_row(row: Mapping[str, Any], where: str, extra_columns=(), schema: Mapping | None = None) -> dict:
    """One samples.tsv row (strings) -> {column: typed value or None}; unknown columns are refused."""
    known = setting_columns()
    out = {}
    for col, raw in row.items():
        if col in known:
            stage, key = known[col]
            value = parse_cell(stage, key, raw, where)
            out[col] = None if value is None else check_value(stage, key, value, where, schema)
        elif col in BASE_COLUMNS or col in extra_columns:
            out[col] = None if raw is None or (isinstance(raw, float) and math.isnan(raw)) or raw == "" else raw
        else:
            choices = [*BASE_COLUMNS, *extra_columns, *sorted(known)]
            close = difflib.get_close_matches(col, choices, n=1)
            raise StitchError(f"{where}: unknown column {col!r}; known columns: {', '.join(choices)}"
                              + (f"; did you mean {close[0]!r}?" if close else ""))
    return out


def check_pack_defaults(pack_defaults: Mapping, where: str, schema: Mapping | None = None) -> None:
    """A pack's ``defaults`` block may only name known stage settings with valid values."""
    for stage, values in (pack_defaults or {}).items():
        if stage == "schedule":
            check_schedule(values, f"{where}: defaults.schedule")
            continue
        if stage not in STAGES or not isinstance(values, Mapping):
            raise StitchError(f"{where}: defaults.{stage} is not a stage with settings ({', '.join(STAGES)})")
        for key, value in values.items():
            if key not in defaults(stage):
                raise StitchError(f"{where}: defaults.{stage}.{key} is not a setting of {stage} "
                                  f"({', '.join(defaults(stage))})")
            if value is not None:
                check_value(stage, key, value, where, schema)


def check_schedule(name: Any, where: str) -> str:
    if name not in SCHEDULES:
        raise StitchError(f"{where}: schedule {name!r} is not one of {', '.join(SCHEDULES)}; use one of them")
    return name


def resolve_schedule(sample: Mapping, config: Mapping, pack_defaults: Mapping,
                     where: Mapping[str, str] | None = None) -> Setting:
    """The video's schedule: samples column ``schedule`` > config ``schedule`` > pack ``defaults.schedule``."""
    source, name = _first_set(("sample", (sample or {}).get("schedule")), ("config", (config or {}).get("schedule")),
                              ("pack", (pack_defaults or {}).get("schedule")), ("default", "reference"))
    return Setting(check_schedule(name, (where or {}).get(source, source)), source)


def _first_set(*layers: tuple[str, Any]) -> tuple[str, Any]:
    """The first (source, value) of ``layers`` whose value is set (not None)."""
    return next((s, v) for s, v in layers if v is not None)


def check_shard_frames(value: Any, where: str) -> int:
    """``shard_frames`` as a whole number of frames >= 1; else one line naming the file and the fix."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise StitchError(f"{where}: shard_frames = {value!r} is not a whole number of frames >= 1; "
                          f"give e.g. {DEFAULT_SHARD_FRAMES} or leave it empty")
    return int(text)


def resolve_shard_frames(sample: Mapping, config: Mapping, where: Mapping[str, str] | None = None) -> Setting:
    """Frames per shard (stitch.segments): samples column ``shard_frames`` > config ``shard_frames`` > default."""
    source, value = _first_set(("sample", (sample or {}).get("shard_frames")),
                               ("config", (config or {}).get("shard_frames")), ("default", DEFAULT_SHARD_FRAMES))
    return Setting(check_shard_frames(value, (where or {}).get(source, source)), source)


def resolve_stage(stage: str, sample: Mapping, config: Mapping, pack_defaults: Mapping,
                  where: Mapping[str, str] | None = None, schema: Mapping | None = None,
                  schedule: str | None = None) -> dict[str, Setting]:
    """{key: Setting} of one stage for one video. ``sample``: typed samples.tsv row; ``config``: the whole config;
    ``pack_defaults``: the pack's ``defaults`` block; ``where``: {source: file} for error messages; ``schedule``:
    the video's schedule when already resolved (else resolved here)."""
    where = where or {}
    schedule = schedule or resolve_schedule(sample, config, pack_defaults, where).value
    preset = SCHEDULES[schedule].get(stage, {})
    out = {}
    for key, default in defaults(stage).items():
        layers = (
            ("sample", (sample or {}).get(column(stage, key))),
            ("config", ((config or {}).get(stage) or {}).get(key)),
            ("schedule", preset.get(key)),
            ("pack", ((pack_defaults or {}).get(stage) or {}).get(key)),
            ("default", default),
        )
        source, value = _first_set(*layers)
        if isinstance(value, int) and not isinstance(value, bool) and field_types(stage)[key] is float:
            value = float(value)
        check_value(stage, key, value, where.get(source, source), schema if source != "default" else None)
        out[key] = Setting(value, source)
    return out


def resolve(sample: Mapping, config: Mapping, pack_defaults: Mapping, where: Mapping[str, str] | None = None,
            schema: Mapping | None = None) -> dict[str, dict[str, Setting]]:
    """{stage: {key: Setting}} of every stage for one video."""
    schedule = resolve_schedule(sample, config, pack_defaults, where).value
    return {s: resolve_stage(s, sample, config, pack_defaults, where, schema, schedule) for s in STAGES}


def values(resolved: Mapping[str, Setting]) -> dict[str, Any]:
    """{key: value} of one resolved stage (what a rule passes to its script)."""
    return {k: s.value for k, s in resolved.items()}


def report(resolved: Mapping[str, Mapping[str, Setting]], extra: Mapping[str, Setting] | None = None) -> dict:
    """The ``settings.yaml`` document: {stage: {key: {value, source}}} plus top-level per-video choices."""
    doc = {k: {"value": s.value, "source": s.source} for k, s in (extra or {}).items()}
    doc.update({stage: {k: {"value": s.value, "source": s.source} for k, s in keys.items()}
                for stage, keys in resolved.items()})
    return doc


def run(document: Mapping, out_yaml: str | Path, pack_dir: str | Path | None = None) -> None:
    """Stage ``settings``: write a video's resolved settings with their sources. It is the video's first job, so it
    also checks every file of the pack (``pack_dir``) against its sha256: a corrupt pack stops the run early."""
    import yaml

    from stitch.atomic import atomic_path

    if pack_dir is not None:
        from stitch.packs import Pack

        Pack.open(pack_dir).verify()

    with atomic_path(out_yaml) as tmp:
        Path(tmp).write_text(yaml.safe_dump(dict(document), sort_keys=False))
