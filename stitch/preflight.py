"""Fail-early checks of a run's inputs while the Snakefile is parsed (workflow/rules/common.smk): config files,
samples table rows, edit directions against the pack. A bad input ends ``snakemake`` (``-n`` too) before any job
runs, with one line naming the file and what to do.

Snakemake prints its own traceback around any exception raised while it parses the workflow; :func:`fail_early`
prints a StitchError as the one line ``stitch error: ...`` and exits with status 1 instead. Config problems name
the config file that sets the key (Snakemake merges ``config/config.yaml``, every ``--configfile`` and
``--config`` in that order; the last one that sets a key wins).
"""

from __future__ import annotations

import contextlib
import difflib
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema

from stitch.errors import StitchError

#: (name, its YAML mapping) of each config source, in Snakemake's merge order (later ones win)
Sources = Sequence[tuple[str, Mapping]]

#: what to do about a bad cell of samples.tsv, per column
SAMPLE_HINTS = {
    "sample": "use letters, digits, '_' and '-' only (the name becomes a folder under results/)",
    "path": "give the video's path, relative to the working directory",
    "faces": "write largest, all or track ids such as 0,2",
}


@contextlib.contextmanager
def fail_early() -> Iterator[None]:
    """Turn a StitchError raised inside into one line on stderr and exit status 1 (no Snakemake traceback)."""
    try:
        yield
    except StitchError as e:
        print(f"stitch error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def defined_in(sources: Sources, keys: Sequence) -> str:
    """The config source whose value of the key path ``keys`` Snakemake keeps (the last that sets it)."""
    for name, doc in reversed(sources):
        node: Any = doc
        for key in keys:
            if not (isinstance(node, Mapping) and key in node):
                break
            node = node[key]
        else:
            return name
    return " + ".join(name for name, _ in sources) or "the config"


def dotted(keys: Sequence) -> str:
    """['sweeps', 'older', 1] -> 'sweeps.older[1]'."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def check_config(config: Mapping, schema: Mapping, sources: Sources) -> None:
    """The merged config: no edit set emptied by a later file, valid under the schema, every number finite."""
    check_edits_not_emptied(sources)
    check_edit_targets(config.get("edits"), sources)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise StitchError(schema_error_line(error, sources))
    check_finite(config, sources)


def schema_error_line(error: jsonschema.ValidationError, sources: Sources) -> str:
    """One line for a schema violation: the file, the key, what is wrong, what to do."""
    keys = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = list(error.schema.get("properties", {}))
        key = sorted(set(error.instance) - set(known))[0]
        close = difflib.get_close_matches(key, known, n=1)
        scope = f"in {dotted(keys)}" if keys else "at the top level"
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"{defined_in(sources, [*keys, key])}: unknown key {key!r} {scope}; {hint}"
                f"known keys: {', '.join(known)}")
    return (f"{defined_in(sources, keys)}: {dotted(keys) or 'config'}: {error.message}; fix it as the comments of "
            "config/config.yaml describe (schema: workflow/schemas/config.schema.yaml)")


def check_finite(value: Any, sources: Sources, keys: tuple = ()) -> None:
    """Every number of the config finite (YAML's .nan / .inf pass a schema's ``number``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise StitchError(f"{defined_in(sources, keys)}: {dotted(keys)} = {value} is not a finite number; "
                          "write a finite number")
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(v, sources, (*keys, k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, sources, (*keys, i))


def check_edits_not_emptied(sources: Sources) -> None:
    """``edits: {}`` (or ``edits: {name: {}}``) in a config file: Snakemake merges mappings key by key, so an empty
    one removes nothing and the other files' edits would run unnoticed; refused with how to choose the edits."""
    for i, (name, doc) in enumerate(sources):
        edits = doc.get("edits") if isinstance(doc, Mapping) else None
        if not isinstance(edits, Mapping):
            continue
        empty = ["edits"] if not edits else [f"edits.{k}" for k, v in edits.items() if v == {}]
        if not empty:
            continue
        others = [other for j, (other, d) in enumerate(sources) if j != i and isinstance(d, Mapping) and d.get("edits")]
        if not others:
            if not edits:
                raise StitchError(f"{name}: edits is empty, so nothing would be produced; "
                                  "name at least one edit with a direction and factor, e.g. older: {age: 8}")
            continue  # an edit without directions in the only file that has edits: the schema says so
        raise StitchError(
            f"{name}: {empty[0]}: {{}} removes nothing (Snakemake merges config files key by key, so the edits of "
            f"{', '.join(others)} would still run); list the edits you want under edits: in {others[0]} "
            "(or run snakemake with --replace-workflow-config and a config file that has every key)")


def check_sample_row(row: Mapping, schema: Mapping, where: str) -> None:
    """One samples.tsv row (typed cells, None = empty) against the samples schema: one line per bad cell."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(dict(row)))
    if error is None:
        return
    column = error.absolute_path[0] if error.absolute_path else None
    hint = SAMPLE_HINTS.get(column, "see workflow/schemas/samples.schema.yaml")
    what = f"column {column!r} = {error.instance!r}" if column else "row"
    raise StitchError(f"{where}: {what}: {error.message}; {hint}")


def check_edit_targets(edits: Any, sources: Sources) -> None:
    """Edit targets (:mod:`stitch.targets`) before the schema, so a bad one gets its own line: a number for
    age_years / smile_score, male / female for a gender target, not both a target and a raw factor of its
    direction."""
    from stitch.targets import TARGETS, is_target, split_targets, target_error

    for name, spec in (edits or {}).items() if isinstance(edits, Mapping) else ():
        if not isinstance(spec, Mapping):
            continue
        for key, value in spec.items():
            error = target_error(key, value) if key in TARGETS else None
            if error:
                raise StitchError(f"{defined_in(sources, ['edits', name, key])}: edits.{name}.{key} {error}")
        raw, targets = split_targets(spec)
        for key in targets:
            direction = TARGETS[key].direction
            if direction in raw and not is_target(direction, raw[direction]):
                raise StitchError(f"{defined_in(sources, ['edits', name])}: edits.{name} sets both {direction} (a raw "
                                  f"factor) and {key} (a target for direction {direction}); keep one of them")


def check_edit_directions(edits: Mapping[str, Mapping], known: Sequence[str], pack: str, sources: Sources) -> None:
    """Every direction an edit names (or a target of it calibrates, :mod:`stitch.targets`) exists in the pack
    (``known``): else one line naming the edit, the unknown direction or target and the known ones."""
    from stitch.targets import TARGETS, is_target

    targets = ", ".join(TARGETS)
    for name, factors in edits.items():
        for key, value in factors.items():
            where = f"{defined_in(sources, ['edits', name])}: edits.{name}"
            if is_target(key, value):
                if TARGETS[key].direction not in known:
                    raise StitchError(f"{where}: target {key} calibrates direction {TARGETS[key].direction!r}, which "
                                      f"model pack {pack} does not have; known directions: {', '.join(sorted(known))}")
            elif key not in known:
                close = difflib.get_close_matches(key, [*known, *TARGETS], n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise StitchError(f"{where} uses direction {key!r}, which model pack {pack} does not have; "
                                  f"{hint}known directions: {', '.join(sorted(known))}; targets: {targets}")


def remove_outputs(paths: Sequence[str]) -> int:
    """Delete existing files / folders among ``paths`` (the outputs of jobs a run is about to redo); returns how
    many were there."""
    import os
    import shutil

    removed = 0
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        else:
            continue
        removed += 1
    return removed


def check_writable(paths: Sequence[str]) -> None:
    """The folders that will hold ``paths`` (or their nearest existing parents) can be written: else one line
    saying why (read-only file system / permission) and what to do."""
    import os
    from pathlib import Path

    seen = set()
    for path in paths:
        folder = Path(path).absolute().parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder in seen:
            continue
        seen.add(folder)
        if not os.access(folder, os.W_OK):
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
            why = "is on a read-only file system" if read_only else "is not writable (permission denied)"
            raise StitchError(f"{folder} {why}, so {path} cannot be written; set results: in config/config.yaml to "
                              "a writable folder" + ("" if read_only else " or make it writable"))
