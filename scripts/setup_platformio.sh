#!/usr/bin/env bash
# Makes PlatformIO build tinyc projects offline (`tinyc build OUTDIR --with platformio`), without
# its registry: installs tool-scons (the pip-installed SCons) and tinyc's development platform
# tinyc-cortexm (system arm-none-eabi toolchain, one board file per boards/*.yaml) into tinyc's
# own PlatformIO core folder, .venv/tinyc-platformio (TINYC_PLATFORMIO_DIR overrides it).
# Idempotent: when everything is up to date it only checks a stamp (about 0.1 s).
# Needs the packages of requirements-dev.txt (platformio, scons); scripts/setup.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=$(.venv/bin/python -m tinyc.platformio install) || exit $?
[ -n "${VERBOSE:-}" ] && echo "$quiet"
exit 0
