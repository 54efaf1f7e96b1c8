#!/usr/bin/env bash
# Builds the on-premise bundle: shoal-VERSION-linux-x86_64.tar.gz, which runs unpacked anywhere
# on an x86_64 Linux with glibc 2.36 or newer and nothing else installed.
#
#   scripts/bundle.sh                  # builds, writes dist/shoal-VERSION-linux-x86_64.tar.gz
#   scripts/bundle.sh --out DIR        # somewhere else
#   scripts/bundle.sh --binary PATH    # bundles that shoal binary instead of building one
#
# Contents: bin/shoal (stripped; its rpath is $ORIGIN/../lib), lib/ with every shared library it
# loads except the C library's own (glibc: libc, libm, libpthread, libdl, librt, libresolv, the
# loader), each with rpath $ORIGIN so they find each other, etc/ with the cluster-config examples,
# etc/systemd/shoal.service, INSTALL.md. Installs what it needs first (scripts/deps.sh bundle).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/dist"
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "bundle.sh: --out needs a DIR" >&2; exit 2; }
           out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --binary) [ $# -ge 2 ] && [ -x "$2" ] || { echo "bundle.sh: --binary needs an executable" >&2; exit 2; }
              binary="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bundle.sh: unexpected argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/deps.sh" bundle
if [ -z "$binary" ]; then
  echo "== building" >&2
  "$root/scripts/build.sh" >/dev/null
  binary="$root/build/shoal"
fi
version="$(sed -n 's/^project(shoal VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")"
name="shoal-$version-linux-x86_64"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/bin" "$dir/lib" "$dir/etc/systemd"

echo "== collecting libraries" >&2
cp "$binary" "$dir/bin/shoal"
strip --strip-unneeded "$dir/bin/shoal"
# Every library the binary loads, as the loader resolves them here (ldd lists the transitive ones
# too), except glibc's: those come from the target system, like the loader itself.
glibc='^(libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libmvec)\.so\.|^ld-linux'
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' |
  while read -r soname path; do
    if [[ "$soname" =~ $glibc ]]; then continue; fi
    cp -L "$path" "$dir/lib/$soname"   # -L: through the alternatives symlinks (OpenBLAS)
    strip --strip-unneeded "$dir/lib/$soname"
    patchelf --set-rpath '$ORIGIN' "$dir/lib/$soname"
  done
# DT_RPATH (not RUNPATH): it also applies to the libraries' own dependencies.
patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$dir/bin/shoal"

echo "== config examples, systemd unit, INSTALL.md" >&2
cp -r "$root/cluster-config/." "$dir/etc/"
rm -f "$dir/etc/local-3/secret.txt"
sed -e 's#@SHOAL_BIN@#/opt/shoal/bin/shoal#' -e 's#@SHOAL_CONF@#/opt/shoal/etc/node.conf#' \
    -e 's#@SHOAL_DOC@#file:///opt/shoal/INSTALL.md#' \
    "$root/packaging/shoal.service.in" > "$dir/etc/systemd/shoal.service"
cp "$root/packaging/INSTALL.md" "$dir/INSTALL.md"
sed -i "s/@VERSION@/$version/g" "$dir/INSTALL.md"

mkdir -p "$out"
tar -C "$stage" --owner=0 --group=0 -czf "$out/$name.tar.gz.part" "$name"
mv "$out/$name.tar.gz.part" "$out/$name.tar.gz"   # never a half-written bundle under its name
echo "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1), $(ls "$dir/lib" | wc -l) libraries)"
