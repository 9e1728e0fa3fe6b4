#!/usr/bin/env bash
# The `ringfetch` command as a user meets it: help, exit codes, errors naming the bad flag,
# and a (small) self-check run that must pass.
set -uo pipefail
rf=$1
fail() { echo "FAIL: $*"; exit 1; }

out=$("$rf" --help) || fail "--help exited $?"
grep -q "check" <<<"$out" || fail "--help does not list the check command"
grep -q "serve" <<<"$out" || fail "--help does not list the serve command"

"$rf" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no command should exit 2"

err=$("$rf" frobnicate 2>&1); rc=$?
[ $rc -eq 2 ] || fail "unknown command exited $rc"
grep -q "unknown command 'frobnicate'" <<<"$err" || fail "unknown command not named: $err"

err=$("$rf" check --echo-mib lots 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bad flag value exited $rc"
grep -q -- "--echo-mib expects a non-negative integer, got 'lots'" <<<"$err" || fail "bad value not named: $err"

err=$("$rf" check --bogus 2>&1); rc=$?
[ $rc -eq 2 ] || fail "unknown flag exited $rc"
grep -q -- "unknown option '--bogus'" <<<"$err" || fail "unknown flag not named: $err"

out=$("$rf" check --help) || fail "check --help exited $?"
grep -q -- "--echo-mib" <<<"$out" || fail "check --help lacks its options"

out=$("$rf" check --echo-mib 32 --receive-mib 16 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || fail "check exited $rc"
grep -q "checks passed" <<<"$out" || fail "check did not report success"
# serve: a directory served through the JSON API; curl (a client nobody here wrote) reads it back.
err=$("$rf" serve --generate nobucket 2>&1); rc=$?
[ $rc -eq 2 ] || fail "serve with a bad --generate exited $rc"
grep -q -- "--generate expects BUCKET/OBJECT:SIZE" <<<"$err" || fail "bad --generate not named: $err"
err=$("$rf" serve --port 99999 2>&1); rc=$?
[ $rc -eq 2 ] || fail "serve with a bad port exited $rc"

work=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/root/bkt/dir"
head -c 3000001 /dev/urandom > "$work/root/bkt/dir/a b.bin"
"$rf" serve --root "$work/root" --generate gen/big.bin:5M > "$work/out" 2>"$work/err" &
serve_pid=$!
for _ in $(seq 100); do grep -q STORAGE_EMULATOR_HOST "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/^export STORAGE_EMULATOR_HOST=//p' "$work/out")
[ -n "$base" ] || fail "serve did not print its address: $(cat "$work/err")"
meta=$(curl -sf "$base/storage/v1/b/bkt/o/dir%2Fa%20b.bin") || fail "metadata request failed"
grep -q '"size":"3000001"' <<<"$meta" || fail "metadata has the wrong size: $meta"
curl -sf -o "$work/whole" "$base/download/storage/v1/b/bkt/o/dir%2Fa%20b.bin?alt=media" || fail "media request failed"
cmp -s "$work/whole" "$work/root/bkt/dir/a b.bin" || fail "whole object differs"
curl -sf -r 1000-1999 -o "$work/part" "$base/storage/v1/b/bkt/o/dir%2Fa%20b.bin?alt=media" || fail "range request failed"
cmp -s "$work/part" <(tail -c +1001 "$work/root/bkt/dir/a b.bin" | head -c 1000) || fail "range differs"
code=$(curl -s -o /dev/null -w '%{http_code}' -r 5000000-5000010 "$base/storage/v1/b/bkt/o/dir%2Fa%20b.bin?alt=media")
[ "$code" = 416 ] || fail "a range past the end answered $code"
list=$(curl -sf "$base/storage/v1/b/gen/o?prefix=big") || fail "list failed"
grep -q '"name":"big.bin"' <<<"$list" && grep -q '"size":"5242880"' <<<"$list" || fail "list is wrong: $list"
kill -TERM $serve_pid
wait $serve_pid; rc=$?
[ $rc -eq 0 ] || fail "serve exited $rc after SIGTERM"

echo "cli ok"
