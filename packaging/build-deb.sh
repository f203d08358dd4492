#!/bin/bash
# Builds the fashiond Debian package from built binaries with dpkg-deb (no debhelper needed).
#
#   packaging/build-deb.sh --bin-dir .build/release [--out-dir out] [--compression xz|gzip|none] [--strip]
#
# Prints the path of the .deb. `make deb` builds release binaries that load the Swift runtime from
# /usr/lib/fashiond, where install-tree.sh copies the libraries they need, so the package runs on a
# Debian without a Swift toolchain; Depends: is computed from the system libraries that the binaries
# and those bundled libraries link (dpkg -S). The systemd test packs debug binaries with
# --compression none, which is fast and still exercises the maintainer scripts.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=""
out_dir=$repo/out
compression=xz
strip=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) bin_dir=$2; shift 2 ;;
        --out-dir) out_dir=$2; shift 2 ;;
        --compression) compression=$2; shift 2 ;;
        --strip) strip=--strip; shift ;;
        -h|--help) usage ;;
        *) echo "build-deb.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$bin_dir" ] || { echo "build-deb.sh: --bin-dir is required" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb not found (apt-get install dpkg-dev)" >&2; exit 1; }
bin_dir=$(cd "$bin_dir" && pwd)

arch=$(dpkg --print-architecture)
stage=$(mktemp -d --tmpdir --suffix=.fashiond-deb)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

"$repo/packaging/install-tree.sh" --bin-dir "$bin_dir" --prefix /usr --destdir "$stage" --sysconfdir /etc --fresh-config $strip
# From the staged tree: this also proves the binaries find their bundled runtime there.
version=$("$stage/usr/bin/fashiond" --version)

# Depends: the Debian packages that own the shared libraries the binaries and the bundled runtime
# (/usr/lib/fashiond) need directly; the bundled libraries themselves are skipped. One `dpkg -S`
# answers for all of them (each call reads the whole package database). Libraries no package owns
# (a toolchain's Swift runtime that a plain `swift build` links from its own directory) are reported.
depends() {
    local binary lib path canonical resolved owner entry
    local -a needed=() paths=()
    for binary in "$@"; do
        resolved=$(ldd "$binary")
        for lib in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            case "$lib" in ld-linux*) continue ;; esac   # the dynamic loader comes with libc6
            path=$(printf '%s\n' "$resolved" | awk -v lib="$lib" '$1 == lib && $3 ~ /^\// {print $3}')
            [ -n "$path" ] || { echo "build-deb.sh: $binary needs $lib, which is not installed" >&2; exit 1; }
            case "$path" in "$stage"/*) continue ;; esac   # bundled in the package
            canonical=$(readlink -f "$path")
            needed+=("$lib|$path|$canonical")
            paths+=("$path" "$canonical")
        done
    done
    local owners packages="" unowned=""
    owners=$(dpkg -S "${paths[@]}" 2>/dev/null || true)
    for entry in "${needed[@]}"; do
        IFS='|' read -r lib path canonical <<< "$entry"
        # Lines read "package:arch: /path" (or "pkg1, pkg2: /path" for a shared directory).
        owner=$(printf '%s\n' "$owners" | awk -F': ' -v a="$path" -v b="$canonical" '$2 == a || $2 == b {print $1; exit}')
        if [ -z "$owner" ]; then unowned="$unowned $lib"; continue; fi
        owner=${owner%%,*}
        owner=${owner%%:*}
        # Any OpenBLAS variant will do (pthread, openmp, serial): depend on the metapackage.
        case "$owner" in libopenblas0-*) owner=libopenblas0 ;; esac
        packages="$packages $owner"
    done
    if [ -n "$unowned" ]; then
        echo "build-deb.sh: note: no package provides$(printf ' %s' $(printf '%s\n' $unowned | sort -u)); this .deb runs only where they are installed (make deb bundles the Swift runtime instead)" >&2
    fi
    printf '%s\n' $packages | sort -u | paste -sd, - | sed 's/,/, /g'
}
libs=$(depends "$stage/usr/bin/fashiond" "$stage/usr/bin/fashionctl" $(find "$stage/usr/lib/fashiond" -name '*.so*' 2>/dev/null))

install -d -m 0755 "$stage/DEBIAN"
installed_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: fashiond
Version: $version
Architecture: $arch
Maintainer: fashiond maintainers <fashiond@localhost>
Installed-Size: $installed_kib
Depends: ${libs:+$libs, }init-system-helpers, systemd | adduser
Recommends: systemd
Section: net
Priority: optional
Description: Kafka stream classifier for clothing images
 fashiond consumes clothing images from a Kafka topic (or Google Cloud
 Pub/Sub), classifies them with a Fashion-MNIST CNN and writes one result
 per message to a durable journal. fashionctl submits images and reads or
 follows results over the daemon's Unix control socket.
 .
 The package ships systemd units (fashiond.service, fashiond.socket), a
 sysusers.d entry for the fashiond user and group, the default model, a
 commented default configuration, man pages and shell completions.
EOF
echo /etc/fashiond/fashiond.toml > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$repo/packaging/deb/$script" "$stage/DEBIAN/$script"
done

mkdir -p "$out_dir"
deb="$out_dir/fashiond_${version}_${arch}.deb"
case "$compression" in
    none) dpkg-deb --root-owner-group -Znone --build "$stage" "$deb" >/dev/null ;;
    gzip) dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null ;;
    xz) dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null ;;
    *) echo "build-deb.sh: --compression must be xz, gzip or none" >&2; exit 2 ;;
esac
echo "$deb"
