#!/usr/bin/env bash
# `make demo`: start the sandbox, plan and apply the example manifests, show them converged and a
# second plan with nothing left to do, then stop the sandbox. Needs only the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
reconciler() { "$PYTHON" -m reconciler "$@"; }

step "reconciler sandbox serve --env-file sandbox.env --speed 10 &"
"$PYTHON" -m reconciler sandbox serve --env-file "$work/sandbox.env" --speed 10 > "$work/sandbox.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -f "$work/sandbox.env" ] && break; sleep 0.1; done
[ -f "$work/sandbox.env" ] || { cat "$work/sandbox.log"; exit 1; }
cat "$work/sandbox.log"
set -a
# shellcheck disable=SC1091
. "$work/sandbox.env"
set +a

step "reconciler validate manifests"
reconciler validate manifests
step "reconciler plan manifests"
reconciler plan manifests
step "reconciler apply --auto-approve --wait manifests"
reconciler apply --auto-approve --wait --poll-interval 250ms manifests
step "reconciler status manifests"
reconciler status manifests
step "reconciler plan --detailed-exitcode manifests   # 0: nothing left to do"
reconciler plan --detailed-exitcode manifests
out=${DEMO_OUT:-demo-output}
mkdir -p "$out"
step "reconciler status corsica-max-ndvi-v1 --map $out/corsica-max-ndvi-v1.png"
reconciler status corsica-max-ndvi-v1 --map "$out/corsica-max-ndvi-v1.png"
reconciler status corsica-max-ndvi-v1 --map "$out/corsica-max-ndvi-v1.geojson"
echo
echo "The jobs converged; the tile map is in $out/. The sandbox stops now."
