#!/usr/bin/env bash
# Builds the on-premise bundle: shoal-VERSION-linux-x86_64.tar.gz, which runs unpacked anywhere
# on an x86_64 Linux with any glibc, older or newer (it brings its own), nothing else installed.
#
#   scripts/bundle.sh                  # builds, writes dist/shoal-VERSION-linux-x86_64.tar.gz
#   scripts/bundle.sh --out DIR        # somewhere else
#   scripts/bundle.sh --binary PATH    # bundles that shoal binary instead of building one
#
# Contents: libexec/shoal (the ELF, stripped; rpath $ORIGIN/../lib), bin/shoal (a sh script that
# starts it through the bundle's own loader: lib/ld-linux-x86-64.so.2 --library-path lib), lib/
# with every shared library it loads, glibc's included (libc, libm, libpthread, the loader, ...,
# and glibc's own NSS modules), the others with rpath $ORIGIN, etc/ with the cluster-config
# examples, etc/systemd/shoal.service, INSTALL.md. Installs what it needs (scripts/deps.sh bundle).
#
# Why the loader and not a static binary: Debian has no static CAF (libcaf-dev ships only .so),
# and a static glibc still dlopens NSS modules of the host's glibc for getaddrinfo. Why the loader
# is started explicitly (bin/shoal) and not named in the ELF (PT_INTERP): PT_INTERP must be an
# absolute path, and the bundle runs from wherever it is unpacked. The image (scripts/image.sh),
# whose path is fixed, names it in the ELF instead.
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
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
mkdir -p "$dir/bin" "$dir/libexec" "$dir/lib" "$dir/etc/systemd"

echo "== collecting libraries" >&2
cp "$binary" "$dir/libexec/shoal"
strip --strip-unneeded "$dir/libexec/shoal"
# glibc's libraries: shipped as they are (not stripped, no rpath: the loader and libc are one
# release and find each other through --library-path). The loader runs them on a host with an
# older glibc or none (tests/bundle: Debian 11, glibc 2.31). Beyond what ldd lists, the ones
# glibc itself may load later: the NSS modules that use its private symbols (files and dns are
# inside libc since 2.34; compat is not, and a host's copy of it would not load into this libc),
# and the small libraries an NSS module or plugin of the host may link.
glibc=" libc.so.6 libm.so.6 libmvec.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2
        libutil.so.1 libanl.so.1 libnsl.so.1 libnss_files.so.2 libnss_dns.so.2 libnss_compat.so.2 "
loader="$(ldd "$binary" | awk '$1 ~ /^\/.*ld-linux-x86-64\.so\.2$/ { print $1 }')"
[ -n "$loader" ] || { echo "bundle.sh: no x86_64 loader in ldd $binary" >&2; exit 1; }
cp -L "$loader" "$dir/lib/ld-linux-x86-64.so.2"
libc="$(ldd "$binary" | awk '$1 == "libc.so.6" { print $3 }')"
libdir="$(dirname "$(readlink -f "$libc")")"
for so in $glibc; do
  if [ -e "$libdir/$so" ]; then cp -L "$libdir/$so" "$dir/lib/$so"; fi
done
# Every other library the binary loads, as the loader resolves them here (ldd lists the
# transitive ones too).
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' |
  while read -r soname path; do
    case "$glibc" in *" $soname"[[:space:]]*) continue ;; esac
    cp -L "$path" "$dir/lib/$soname"   # -L: through the alternatives symlinks (OpenBLAS)
    strip --strip-unneeded "$dir/lib/$soname"
    patchelf --set-rpath '$ORIGIN' "$dir/lib/$soname"
  done
# DT_RPATH (not RUNPATH): it also applies to the libraries' own dependencies. bin/shoal gives the
# loader --library-path anyway; the rpath lets `lib/ld-linux-x86-64.so.2 libexec/shoal` and the
# image's copy (PT_INTERP set to the loader) find lib/ without it.
patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$dir/libexec/shoal"
cat > "$dir/bin/shoal" <<'WRAPPER'
#!/bin/sh
# Shoal, started through the loader and C library shipped in ../lib, so that the host's glibc
# (any version, or none) is never used. The real binary is ../libexec/shoal; see ../INSTALL.md.
# Follows symlinks to itself (e.g. /usr/local/bin/shoal -> /opt/shoal/bin/shoal).
self="$0"
while [ -L "$self" ]; do
  link="$(readlink "$self")"
  case "$link" in
    /*) self="$link" ;;
    *) self="$(dirname "$self")/$link" ;;
  esac
done
top="$(CDPATH='' cd -- "$(dirname -- "$self")/.." && pwd -P)" || exit 127
exec "$top/lib/ld-linux-x86-64.so.2" --argv0 "$0" --library-path "$top/lib" \
  "$top/libexec/shoal" "$@"
WRAPPER
chmod 755 "$dir/bin/shoal"

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
glibc_version="$(ldd --version | sed -n '1s/.* //p')"
echo "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1), $(ls "$dir/lib" | wc -l)" \
     "libraries, glibc $glibc_version)"
