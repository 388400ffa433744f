"""Import layering of the library, read from the source with ``ast`` (every ``import``, lazy ones included).

* ``stitch.models`` imports nothing of ``stitch`` but itself and ``stitch.errors``;
* nothing under ``stitch/`` imports snakemake, ``scripts/`` (or their ``_repo``), ``tests/`` or ``benchmarks/``;
* pipeline stages never reach evaluation code (``stitch.metrics``/``quality``/``figures``/``tables``/``probes``),
  and only evaluation and the demo-pack training (``stitch.zoo``) import ``stitch.probes``; the attribute probe's inference
  core, which the calibrate stage needs too, is the pipeline-level ``stitch.attributes``;
* inference (everything the non-zoo rules run) never reaches demo-pack training code (``stitch.zoo``/``zoo_*``).

Module lists come from the file tree: every ``stitch/**/*.py``; the pipeline stages are the scripts of the rules in
``workflow/rules/*.smk`` other than ``evaluation.smk`` (evaluation) and ``zoo.smk`` (demo-pack training), followed
through everything they import.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules"
EVALUATION = ("stitch.metrics", "stitch.describe", "stitch.seam", "stitch.quality", "stitch.figures", "stitch.tables",
              "stitch.probes")
ZOO = ("stitch.zoo",)  # plus any stitch.zoo_* module (see is_zoo)
NON_STAGE_RULE_FILES = {"evaluation.smk": "evaluation", "zoo.smk": "zoo"}


def under(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def is_zoo(mod: str) -> bool:
    return any(under(mod, z) for z in ZOO) or mod.startswith("stitch.zoo_")


@lru_cache(maxsize=None)
def library() -> dict[str, Path]:
    """Module name -> file of every module of the ``stitch`` package."""
    out = {}
    for p in sorted((REPO / "stitch").rglob("*.py")):
        parts = p.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved against module ``name``;
    ``from pkg import mod`` also yields ``pkg.mod`` when that is a module of the library)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = (name or "").split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in library())
    return out


def library_imports(mod: str) -> set[str]:
    """The library modules ``mod`` imports, with the parent packages Python runs on the way."""
    out = set()
    for m in imports_of(library()[mod], mod):
        parts = m.split(".")
        out.update(p for p in (".".join(parts[: i + 1]) for i in range(len(parts))) if p in library())
    return out - {mod}


def reach(start: dict[str, str]) -> dict[str, str]:
    """Library modules reachable from ``start`` (module -> who imports it), as module -> importer."""
    seen = dict(start)
    todo = deque(start)
    while todo:
        m = todo.popleft()
        for dep in library_imports(m):
            if dep not in seen:
                seen[dep] = m
                todo.append(dep)
    return seen


def chain(seen: dict[str, str], mod: str) -> str:
    out = [mod]
    while seen.get(out[-1]) and seen[out[-1]] != out[-1]:
        out.append(seen[out[-1]])
    return " <- ".join(out)


@lru_cache(maxsize=None)
def rule_scripts() -> dict[str, tuple[str, Path]]:
    """Rule name -> (kind, script) for every rule with a ``script:``; kind is 'evaluation', 'zoo' or 'stage'."""
    out = {}
    for smk in sorted(RULES.glob("*.smk")):
        kind = NON_STAGE_RULE_FILES.get(smk.name, "stage")
        for block in re.split(r"^(?=(?:rule|checkpoint)\s+\w+\s*:)", smk.read_text(), flags=re.M)[1:]:
            rule = re.match(r"(?:rule|checkpoint)\s+(\w+)", block).group(1)
            script = re.search(r"^\s+script:\s*\n\s+[\"']([^\"']+)[\"']", block, flags=re.M)
            if script:
                out[rule] = (kind, (smk.parent / script.group(1)).resolve())
    return out


def reached_by(kinds: set[str]) -> dict[str, str]:
    """Library modules reachable from the scripts of the rules of ``kinds`` (module -> importer; scripts as
    ``rule <name>``)."""
    start = {}
    for rule, (kind, script) in rule_scripts().items():
        if kind in kinds:
            for m in imports_of(script):
                if m in library():
                    start.setdefault(m, f"rule {rule}")
    seen = reach(start)
    return {m: imp for m, imp in seen.items() if m in library()}


def test_module_lists_come_from_the_tree():
    for name in NON_STAGE_RULE_FILES:
        assert (RULES / name).is_file(), f"{RULES / name} moved: update NON_STAGE_RULE_FILES"
    kinds = [k for k, _ in rule_scripts().values()]
    assert kinds.count("stage") >= 10 and kinds.count("evaluation") >= 3 and kinds.count("zoo") >= 3, kinds
    for rule, (_, script) in rule_scripts().items():
        assert script.is_file(), f"rule {rule}: {script} missing"
        assert any(m in library() for m in imports_of(script)), f"rule {rule}: {script} calls no stitch module"
    assert "stitch.models.loaders" in library() and all(m in library() for m in EVALUATION)


def test_models_import_only_models_and_errors():
    bad = []
    for mod in library():
        if under(mod, "stitch.models"):
            for m in imports_of(library()[mod], mod):
                if under(m, "stitch") and not (under(m, "stitch.models") or m == "stitch.errors"):
                    bad.append(f"{mod} imports {m}")
    assert not bad, bad


def test_library_never_imports_workflow_scripts_or_tests():
    forbidden = {"snakemake", "scripts", "tests", "benchmarks", "conftest"}
    forbidden |= {p.stem for p in (REPO / "scripts").glob("*.py")}  # scripts/ on sys.path: `import pti`, `_repo`
    bad = [f"{mod} imports {m}" for mod, p in library().items() for m in imports_of(p, mod)
           if m.split(".")[0] in forbidden]
    assert not bad, bad


def test_pipeline_stages_never_reach_evaluation():
    seen = reached_by({"stage"})
    assert "stitch.pti" in seen and "stitch.stitching" in seen and "stitch.attributes" in seen, sorted(seen)
    bad = [chain(seen, m) for m in seen if any(under(m, e) for e in EVALUATION)]
    assert not bad, bad


def test_only_evaluation_and_zoo_import_probes():
    bad = [f"{mod} imports stitch.probes" for mod in library()
           if "stitch.probes" in library_imports(mod) and not (is_zoo(mod) or any(under(mod, e) for e in EVALUATION))]
    assert not bad, bad


def test_inference_never_reaches_zoo():
    seen = reached_by({"stage", "evaluation"})
    assert "stitch.metrics" in seen, sorted(seen)
    bad = [chain(seen, m) for m in seen if is_zoo(m)]
    assert not bad, bad
