#!/usr/bin/env bash
# Stitch's two entry points on a fresh machine (see README):
#   bash run.sh demo   install, then edit the demo clip end to end with the embedded demo pack
#   bash run.sh test   install, then run the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

install() {
  # torch is pinned: 2.13.0 is the CPU wheel these machines carry; an unpinned torch pulls CUDA builds.
  python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
}

case "${1:-}" in
  demo)
    install
    shift
    snakemake --profile workflow/profiles/default "$@"
    # the report (figures + metric tables) of what the run produced: results/report.html
    snakemake --profile workflow/profiles/default "$@" --report results/report.html
    echo "report: results/report.html"
    echo "review: results/review.html (open from disk: the original and the edits in synchronised playback)"
    ;;
  test)
    install
    shift
    set +e
    python -m pytest -q "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
    exit "$rc"
    ;;
  *)
    echo "usage: bash run.sh demo|test [extra args]" >&2
    exit 2
    ;;
esac
