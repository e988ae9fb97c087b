#!/usr/bin/env bash
# Creates .venv-lce, the OPTIONAL Larq Compute Engine environment: larq 0.14.0 and
# larq-compute-engine 0.16.0 on TensorFlow 2.16.2 (the release LCE 0.16 was built against; it
# has Python 3.11 wheels), numpy < 2 and tf-keras, pinned in scripts/requirements-lce.txt.
# About 2.2 GB and a minute from PyPI.  Nothing in `make test` needs it: it regenerates the
# committed fixtures (tests/data/lce/make_fixtures.py) and gives LCE's interpreter to scripts
# run with it.  Keras 2 must be selected: run its Python with TF_USE_LEGACY_KERAS=1.
# Idempotent: re-running it when nothing changed takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null; then
    echo "setup_lce_env: $PY not found; LCE 0.16 and TensorFlow 2.16 have wheels for Python 3.10-3.12 (set PYTHON=...)" >&2
    exit 2
fi
stamp=.venv-lce/.tinyc-lce-setup
want=$(sha256sum scripts/requirements-lce.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    [ -x .venv-lce/bin/python ] || "$PY" -m venv .venv-lce
    echo "setup_lce_env: installing LCE, larq and TensorFlow 2.16 into .venv-lce (about a minute)"
    .venv-lce/bin/pip install -q --disable-pip-version-check -r scripts/requirements-lce.txt \
        2> >(grep -v "^WARNING: Location" >&2)
    TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 .venv-lce/bin/python -c \
        "import larq, larq_compute_engine, tf_keras; larq_compute_engine.testing.Interpreter" \
        2>/dev/null || { echo "setup_lce_env: .venv-lce does not import larq_compute_engine" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
echo "setup_lce_env: ready; regenerate the fixtures with" \
     "TF_USE_LEGACY_KERAS=1 .venv-lce/bin/python tests/data/lce/make_fixtures.py"
