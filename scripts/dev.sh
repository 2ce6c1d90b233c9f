#!/usr/bin/env bash
# One installer for both entry points: `dev.sh run` starts the service, `dev.sh test` runs the suite.
# Idempotent: system packages are installed only when missing, Python packages only when the lock
# file changed, so a second run is fast and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc make
  tesseract-ocr tesseract-ocr-vie
  libreoffice-writer-nogui
  fonts-liberation fonts-liberation2 fonts-dejavu-core
  poppler-utils
  redis-server
  postgresql
  chromium chromium-driver
  wrk
  python3-uno
  libzbar0 libgl1 libglib2.0-0
)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts these on install; the project starts its own instances on its own ports.
for svc in redis-server postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done

PY=${FORMSVC_PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.lock-hash"
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing Python packages"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.lock
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

lint() {
  echo "[lint] ruff"
  "$VENV/bin/ruff" check .
  echo "[lint] mypy"
  "$VENV/bin/mypy" formsvc worker tests
}

# The fast tier: pure and in-process tests. Tests that start servers or processes (`service`), drive Chromium
# (`browser`) or take long (`slow`) are marked so (markers in pyproject.toml) and run only in the full suite.
FAST="not slow and not service and not browser"

cmd=${1:-}
shift || true
case "$cmd" in
  run)  exec "$VENV/bin/formsvc" up "$@" ;;
  # `test` is CI (.ci/run): lint first, a finding fails it, then every test. `test --fast` skips lint and the
  # marked tests. Any further arguments go to pytest (e.g. `--random-order` to shuffle, see README).
  test)
    if [ "${1:-}" = "--fast" ]; then
      shift
      exec "$VENV/bin/python" -m pytest -m "$FAST" "$@"
    fi
    lint
    exec "$VENV/bin/python" -m pytest "$@" ;;
  lint) lint ;;
  setup) ;;
  # A benchmark (`dev.sh bench bench/bench_capture.py --seed 43000`). bench_capture's degradations come from
  # augraphy, which requires opencv-python: a second cv2 build written over the locked headless one changes what
  # every reading sees. Its other requirements go in (held to the lock), augraphy itself without them.
  bench)
    if ! "$VENV/bin/python" -c "import augraphy" 2>/dev/null; then
      echo "[setup] installing augraphy (benchmarks only)"
      "$VENV/bin/pip" install -q --disable-pip-version-check -c requirements.lock \
        numba scikit-image scipy scikit-learn matplotlib requests
      "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "augraphy==8.2.6"
    fi
    exec "$VENV/bin/python" "$@" ;;
  *) echo "usage: scripts/dev.sh run|test [--fast]|lint|setup|bench FILE [ARGS]" >&2; exit 2 ;;
esac
