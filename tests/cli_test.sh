#!/usr/bin/env bash
# The `ringfetch` command as a user meets it: help, exit codes, errors naming the bad flag,
# and a (small) self-check run that must pass.
set -uo pipefail
rf=$1
fail() { echo "FAIL: $*"; exit 1; }

out=$("$rf" --help) || fail "--help exited $?"
grep -q "check" <<<"$out" || fail "--help does not list the check command"

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
echo "cli ok"
