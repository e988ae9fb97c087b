#!/usr/bin/env bash
# Installs what tinyc needs, idempotently: the Arm cross toolchain and QEMU from Debian, and a
# .venv with the pinned Python packages (requirements*.txt) plus tinyc itself. Re-running it
# when nothing changed takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/librdimon.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
# Headless browser for the HTML report test (tests/test_validate.py).
command -v chromium >/dev/null || need_apt+=(chromium)
"${PYTHON:-python3}" -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: need root to install ${need_apt[*]} (run as root, or install them yourself)" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
stamp=.venv/.tinyc-setup
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    echo "setup: installing pinned Python packages into .venv (about a minute the first time)"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt 2> >(grep -v "^WARNING: Location" >&2)
    .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "$want" > "$stamp"
fi

# PlatformIO without its registry: tinyc's local platform and SCons in .venv/tinyc-platformio.
bash scripts/setup_platformio.sh
