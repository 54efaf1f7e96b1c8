#!/usr/bin/env bash
# Builds the container image: an OCI image layout (a directory) and the same as one oci-archive
# tar, from the on-premise bundle, without a Docker daemon. Load or push it with skopeo, podman
# or docker (README.md, "Container image").
#
#   scripts/image.sh                      # bundles the build (scripts/bundle.sh), writes
#                                         # dist/shoal-VERSION-oci/ and dist/shoal-VERSION-oci.tar
#   scripts/image.sh --bundle PATH        # from that bundle tarball instead
#   scripts/image.sh --out DIR            # somewhere else
#
# One layer: the bundle at /opt/shoal, its bin/shoal the ELF itself with the bundle's loader
# as its interpreter (PT_INTERP /opt/shoal/lib/ld-linux-x86-64.so.2) and rpath $ORIGIN/../lib,
# so the image needs no shell; /etc/shoal/node.conf (the embedded example with data_dir
# /var/lib/shoal and host 0.0.0.0); /etc/passwd and /etc/group with the user shoal (10001:10001);
# /var/lib/shoal owned by it. Config: User 10001:10001, Entrypoint `shoal node --config
# /etc/shoal/node.conf` (arguments of `docker run` are more node flags), ports 7420-7423, Volume
# /var/lib/shoal, Healthcheck `shoal health`, labels org.opencontainers.image.*. Reproducible:
# the same bundle gives the same digests (fixed times, sorted entries, numeric owners;
# SOURCE_DATE_EPOCH sets the time, default 0). Written by scripts/oci_image.py (Python's
# standard library): umoci and buildah take times and owners from the files they are given,
# which makes a reproducible build more work, not less.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/dist"
bundle=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "image.sh: --out needs a DIR" >&2; exit 2; }
           out="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --bundle) [ $# -ge 2 ] && [ -f "$2" ] ||
                { echo "image.sh: --bundle needs a bundle tarball" >&2; exit 2; }
              bundle="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unexpected argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/deps.sh" bundle
command -v python3 >/dev/null || { echo "image.sh: needs python3" >&2; exit 1; }
version="$(sed -n 's/^project(shoal VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")"
if [ -z "$bundle" ]; then
  mkdir -p "$out"
  "$root/scripts/bundle.sh" --out "$out" >/dev/null
  bundle="$out/shoal-$version-linux-x86_64.tar.gz"
fi
uid=10001
gid=10001
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
rootfs="$stage/rootfs"
mkdir -p "$rootfs/opt" "$rootfs/etc/shoal" "$rootfs/var/lib/shoal" "$rootfs/tmp"

echo "== /opt/shoal from $(basename "$bundle")" >&2
tar -xzf "$bundle" -C "$stage"
mv "$stage"/shoal-*-linux-x86_64 "$rootfs/opt/shoal"
if [ ! -x "$rootfs/opt/shoal/libexec/shoal" ]; then
  echo "image.sh: $bundle has no libexec/shoal (made by an older scripts/bundle.sh?)" >&2
  exit 1
fi
# No shell in the image to run bin/shoal's script: the ELF names the loader itself, which the
# fixed path /opt/shoal allows (the bundle, which may be unpacked anywhere, cannot).
mv "$rootfs/opt/shoal/libexec/shoal" "$rootfs/opt/shoal/bin/shoal"
rmdir "$rootfs/opt/shoal/libexec"
patchelf --set-interpreter /opt/shoal/lib/ld-linux-x86-64.so.2 "$rootfs/opt/shoal/bin/shoal"
rm -f "$rootfs/opt/shoal/INSTALL.md" "$rootfs/opt/shoal/etc/systemd/shoal.service"
rmdir "$rootfs/opt/shoal/etc/systemd"

echo "== /etc: node.conf, the shoal user" >&2
{
  echo "# The image's node (scripts/image.sh): cluster-config/embedded.conf with data in the volume"
  echo "# /var/lib/shoal and every address listened on. Flags after the image name override it:"
  echo "# --name, --seeds and --advertise-host for a cluster (see /opt/shoal/etc/multi-host.conf)."
  sed -e 's#^data_dir = .*#data_dir = /var/lib/shoal#' -e 's#^host = .*#host = 0.0.0.0#' \
      "$rootfs/opt/shoal/etc/embedded.conf"
} > "$rootfs/etc/shoal/node.conf"
grep -q '^data_dir = /var/lib/shoal$' "$rootfs/etc/shoal/node.conf"
grep -q '^host = 0.0.0.0$' "$rootfs/etc/shoal/node.conf"
printf 'root:x:0:0:root:/root:/sbin/nologin\nshoal:x:%s:%s:Shoal:/var/lib/shoal:/sbin/nologin\n' \
  "$uid" "$gid" > "$rootfs/etc/passwd"
printf 'root:x:0:\nshoal:x:%s:\n' "$gid" > "$rootfs/etc/group"
# glibc's defaults without this file put DNS before /etc/hosts.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs/etc/nsswitch.conf"

created="${SOURCE_DATE_EPOCH:-0}"
license="$(sed -n 's/^License: *//p' "$root/packaging/deb/copyright" | head -1)"
cat > "$stage/config.json" <<JSON
{
  "User": "$uid:$gid",
  "Entrypoint": ["/opt/shoal/bin/shoal", "node", "--config", "/etc/shoal/node.conf"],
  "Env": ["PATH=/opt/shoal/bin"],
  "WorkingDir": "/var/lib/shoal",
  "ExposedPorts": {"7420/tcp": {}, "7421/tcp": {}, "7422/tcp": {}, "7423/tcp": {}},
  "Volumes": {"/var/lib/shoal": {}},
  "StopSignal": "SIGTERM",
  "Healthcheck": {
    "Test": ["CMD", "/opt/shoal/bin/shoal", "health", "--timeout", "4"],
    "Interval": 10000000000,
    "Timeout": 5000000000,
    "StartPeriod": 30000000000,
    "Retries": 3
  },
  "Labels": {
    "org.opencontainers.image.title": "shoal",
    "org.opencontainers.image.description": "Shoal model-serving node (shoal node)",
    "org.opencontainers.image.version": "$version",
    "org.opencontainers.image.licenses": "$license"
  }
}
JSON

echo "== OCI layout" >&2
mkdir -p "$out"
name="shoal-$version-oci"
python3 "$root/scripts/oci_image.py" --root "$rootfs" --out "$out/$name" \
  --config "$stage/config.json" --ref "shoal:$version" --archive "$out/$name.tar" \
  --epoch "$created" --owner "var/lib/shoal=$uid:$gid" --mode "var/lib/shoal=0750" --mode "tmp=1777"
echo "$out/$name/ and $out/$name.tar ($(du -h "$out/$name.tar" | cut -f1))"
