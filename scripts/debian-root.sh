#!/usr/bin/env bash
# Prints the path of a minimal Debian root (debootstrap --variant=minbase), made on first use and
# cached for later runs: for testing the on-premise bundle on a system that has none of Shoal's
# build dependencies. Needs root (debootstrap) and the Debian mirror apt uses here.
#
#   scripts/debian-root.sh            # Debian 12 (bookworm) -> ~/.cache/shoal/debian-12-minbase
#   scripts/debian-root.sh bullseye   # Debian 11 (glibc 2.31) -> ~/.cache/shoal/debian-11-minbase
#
# SUITE is bookworm (the default: the .deb test, whose package uses the system's libraries) or
# bullseye (the bundle test: an older C library than the build machine's). Each is cached on its
# own; $SHOAL_DEBIAN_ROOT ($SHOAL_DEBIAN11_ROOT for bullseye) overrides the cache path. bullseye
# is still on deb.debian.org (2026-12: debootstrap of it from there takes about a minute);
# should it move, SHOAL_DEBIAN_MIRROR=http://archive.debian.org/debian takes it from the archive.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
suite="bookworm"
case "${1:-}" in
  ""|bookworm) ;;
  bullseye) suite="bullseye" ;;
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "debian-root.sh: unknown suite '$1' (bookworm or bullseye)" >&2; exit 2 ;;
esac
case "$suite" in
  bookworm) number=12; override="${SHOAL_DEBIAN_ROOT:-}" ;;
  bullseye) number=11; override="${SHOAL_DEBIAN11_ROOT:-}" ;;
esac
cache="${override:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/shoal/debian-$number-minbase}"
if [ -x "$cache/bin/sh" ] && [ -f "$cache/.shoal-complete" ]; then
  echo "$cache"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "debian-root.sh: debootstrap needs root" >&2; exit 1; }
"$root/scripts/deps.sh" root
# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's own.
mirror="${SHOAL_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
            grep -v security | head -1 || true)"
fi
if [ -z "$mirror" ]; then
  mirror="$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list \
            2>/dev/null || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
tmp="$cache.part.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$cache")"
echo "debian-root.sh: debootstrap --variant=minbase $suite from $mirror" \
     "(once; cached in $cache)" >&2
if ! debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1; then
  tail -20 "$tmp.log" >&2
  rm -rf "$tmp" "$tmp.log"
  exit 1
fi
rm -f "$tmp.log"
touch "$tmp/.shoal-complete"
rm -rf "$cache"
mv "$tmp" "$cache"   # never a half-made root under the cached name
echo "$cache"
