#!/usr/bin/env bash
# Conformance of `ringfetch serve` with a client nobody here wrote: the official Node.js GCS
# client, installed from the npm registry into the build directory on first use.
set -uo pipefail
rf=$1 build=$2 src=$3
fail() { echo "FAIL: $*"; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are missing: run tools/install-deps"

modules="$build/node-gcs"
if [ ! -d "$modules/node_modules/@google-cloud/storage" ]; then
  mkdir -p "$modules"
  if ! (cd "$modules" && npm install --no-audit --no-fund --silent @google-cloud/storage@7 >npm.log 2>&1); then
    echo "SKIP: npm could not install @google-cloud/storage (registry unreachable?): $(tail -3 "$modules/npm.log")"
    exit 77
  fi
fi

work=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/root/bkt/dir"
head -c 3000001 /dev/urandom > "$work/root/bkt/dir/a b#c.bin"
head -c 7 /dev/urandom > "$work/root/bkt/dir/small"
head -c 7 /dev/urandom > "$work/root/bkt/elsewhere"
"$rf" serve --root "$work/root" > "$work/out" 2>"$work/err" &
serve_pid=$!
for _ in $(seq 100); do grep -q STORAGE_EMULATOR_HOST "$work/out" && break; sleep 0.1; done
export STORAGE_EMULATOR_HOST=$(sed -n 's/^export STORAGE_EMULATOR_HOST=//p' "$work/out")
[ -n "$STORAGE_EMULATOR_HOST" ] || fail "serve did not start: $(cat "$work/err")"

cp "$src/tests/node_gcs_conformance.mjs" "$modules/"
out=$(cd "$modules" && timeout 120 node node_gcs_conformance.mjs "$work/root" 2>&1) || fail "node client failed: $out"
echo "$out"
grep -qx "whole 3000001 true" <<<"$out" || fail "whole download"
grep -qx "range 1000 true" <<<"$out" || fail "ranged download"
grep -qx "list dir/a b#c.bin|dir/small" <<<"$out" || fail "listing"
echo "node conformance ok"
