#!/usr/bin/env bash
# Prints the path of a minimal Debian 12 root (debootstrap --variant=minbase), made on first use
# and cached for later runs: for testing the on-premise bundle on a system that has none of
# Shoal's build dependencies. Needs root (debootstrap) and the Debian mirror apt uses here.
#
#   scripts/debian-root.sh      # -> ~/.cache/shoal/debian-12-minbase (or $SHOAL_DEBIAN_ROOT)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SHOAL_DEBIAN_ROOT:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/shoal/debian-12-minbase}"
if [ -x "$cache/bin/sh" ] && [ -f "$cache/.shoal-complete" ]; then
  echo "$cache"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "debian-root.sh: debootstrap needs root" >&2; exit 1; }
"$root/scripts/deps.sh" root
# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's own.
mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
          grep -v security | head -1 || true)"
if [ -z "$mirror" ]; then
  mirror="$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list \
            2>/dev/null || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
tmp="$cache.part.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$cache")"
echo "debian-root.sh: debootstrap --variant=minbase bookworm from $mirror (once; cached in $cache)" >&2
if ! debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1; then
  tail -20 "$tmp.log" >&2
  rm -rf "$tmp" "$tmp.log"
  exit 1
fi
rm -f "$tmp.log"
touch "$tmp/.shoal-complete"
rm -rf "$cache"
mv "$tmp" "$cache"   # never a half-made root under the cached name
echo "$cache"
