#!/usr/bin/env bash
# Installs the build into a scratch root, then builds a separate program against it twice:
# as a meson project (dependency('ringfetch')) and as a CMake project (pkg_check_modules).
set -euo pipefail
build_root=$1
source_root=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_root" --destdir "$scratch/root" --quiet >/dev/null
pc=$(find "$scratch/root" -name ringfetch.pc | head -n1)
[ -n "$pc" ] || { echo "no ringfetch.pc installed"; exit 1; }
# Point the installed .pc at the scratch root, as if installed with that prefix.
mkdir -p "$scratch/pc"
sed "s|^prefix=|prefix=$scratch/root|" "$pc" >"$scratch/pc/ringfetch.pc"
export PKG_CONFIG_PATH="$scratch/pc"

meson setup "$scratch/meson-build" "$source_root/tests/consumer" >/dev/null
ninja -C "$scratch/meson-build" >/dev/null
"$scratch/meson-build/consumer"

cmake -S "$source_root/tests/consumer" -B "$scratch/cmake-build" -G "Unix Makefiles" >/dev/null
cmake --build "$scratch/cmake-build" >/dev/null
"$scratch/cmake-build/consumer"

# The gcs layer through its own .pc file, which requires ringfetch.pc.
gcs_pc=$(find "$scratch/root" -name ringfetch-gcs.pc | head -n1)
[ -n "$gcs_pc" ] || { echo "no ringfetch-gcs.pc installed"; exit 1; }
sed "s|^prefix=|prefix=$scratch/root|" "$gcs_pc" >"$scratch/pc/ringfetch-gcs.pc"
meson setup "$scratch/meson-gcs" "$source_root/tests/consumer-gcs" >/dev/null
ninja -C "$scratch/meson-gcs" >/dev/null
"$scratch/meson-gcs/consumer"
cmake -S "$source_root/tests/consumer-gcs" -B "$scratch/cmake-gcs" -G "Unix Makefiles" >/dev/null
cmake --build "$scratch/cmake-gcs" >/dev/null
"$scratch/cmake-gcs/consumer"
