#!/bin/bash
# Installs fashiond into a file-system tree: binaries, the Swift runtime they link (private copy),
# systemd units, the sysusers.d entry, the default configuration, the models, shell completions, man
# pages and the operator docs. `make install` and `make deb` (packaging/build-deb.sh) both use it, so
# the two never disagree.
#
#   packaging/install-tree.sh --bin-dir .build/release [--prefix /usr/local] [--destdir DIR]
#                             [--sysconfdir /etc] [--unitdir DIR] [--strip] [--fresh-config]
#
# --destdir is the staging root (DESTDIR); every other path is where the files end up on the target
# system. An existing /etc/fashiond/fashiond.toml is kept unless --fresh-config is given (the
# package build passes it: dpkg itself keeps an edited conffile).
#
# Binaries linked with the RUNPATH $ORIGIN/../lib/fashiond (`make dist-build`) get the Swift runtime
# libraries they need copied to PREFIX/lib/fashiond: only those, found by walking DT_NEEDED from the
# binaries through the toolchain's runtime directory (`swift -print-target-info`; set SWIFT to choose
# the toolchain: it must be the one that built the binaries, as `make install`/`make deb` ensure). That
# directory is on no system library path, so the copy cannot clash with another Swift installation.
# Binaries without that RUNPATH (a plain `swift build`) are installed as they are.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=""
prefix=/usr/local
destdir=""
sysconfdir=/etc
unitdir=""
strip=no
fresh_config=no
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) bin_dir=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --destdir) destdir=$2; shift 2 ;;
        --sysconfdir) sysconfdir=$2; shift 2 ;;
        --unitdir) unitdir=$2; shift 2 ;;
        --strip) strip=yes; shift ;;
        --fresh-config) fresh_config=yes; shift ;;
        -h|--help) usage ;;
        *) echo "install-tree.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$bin_dir" ] || { echo "install-tree.sh: --bin-dir is required (the directory holding the built fashiond and fashionctl)" >&2; exit 2; }
for binary in fashiond fashionctl; do
    [ -x "$bin_dir/$binary" ] || { echo "install-tree.sh: $bin_dir/$binary is missing; build first (make release)" >&2; exit 1; }
done
prefix=${prefix%/}
[ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/system
root=${destdir%/}

bindir=$prefix/bin
datadir=$prefix/share
mandir=$datadir/man
docdir=$datadir/doc/fashiond

install -d "$root$bindir" "$root$unitdir" "$root$prefix/lib/sysusers.d" "$root$sysconfdir/fashiond" \
    "$root$datadir/fashiond/models" "$root$mandir/man1" "$root$mandir/man8" "$root$docdir" \
    "$root$datadir/bash-completion/completions" "$root$datadir/zsh/vendor-completions" \
    "$root$datadir/fish/vendor_completions.d"

# Binaries.
for binary in fashiond fashionctl; do
    install -m 0755 "$bin_dir/$binary" "$root$bindir/$binary"
    if [ "$strip" = yes ]; then strip --strip-unneeded "$root$bindir/$binary"; fi
done

# The Swift runtime, for binaries that look for it beside themselves.
private_rpath='$ORIGIN/../lib/fashiond'
libdir=$prefix/lib/fashiond
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
runpath() { readelf -d "$1" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p'; }
bundle=no
for binary in fashiond fashionctl; do
    case ":$(runpath "$bin_dir/$binary"):" in *":$private_rpath:"*) bundle=yes ;; esac
done
if [ "$bundle" = yes ]; then
    swift=${SWIFT:-swift}
    command -v "$swift" >/dev/null || { echo "install-tree.sh: the binaries need the Swift runtime and '$swift' is not on PATH (set SWIFT=/path/to/swift)" >&2; exit 1; }
    # The first of paths.runtimeLibraryPaths: the directory holding libswiftCore.so.
    runtime=$("$swift" -print-target-info | tr -d '\n ' | sed -n 's/.*"runtimeLibraryPaths":\["\([^"]*\)".*/\1/p')
    [ -f "$runtime/libswiftCore.so" ] || { echo "install-tree.sh: no libswiftCore.so in '$runtime' ($swift -print-target-info)" >&2; exit 1; }
    # The directory is ours alone: start it afresh, so an upgrade leaves no library of an older
    # toolchain behind (and a running daemon keeps the inodes it has mapped).
    rm -rf "$root$libdir"
    install -d "$root$libdir"
    # Breadth-first over DT_NEEDED; a library not in the runtime directory belongs to the system.
    declare -A copied=()
    queue=("$root$bindir/fashiond" "$root$bindir/fashionctl")
    while [ ${#queue[@]} -gt 0 ]; do
        object=${queue[0]}
        queue=("${queue[@]:1}")
        for lib in $(needed "$object"); do
            [ -f "$runtime/$lib" ] && [ -z "${copied[$lib]:-}" ] || continue
            copied[$lib]=1
            install -m 0644 "$runtime/$lib" "$root$libdir/$lib"
            if [ "$strip" = yes ]; then strip --strip-unneeded "$root$libdir/$lib"; fi
            queue+=("$root$libdir/$lib")
        done
    done
fi
# The helper scripts below run the binaries from the build directory, never from the staging tree;
# there the Swift runtime comes from the toolchain.
fashiond="$bin_dir/fashiond"
fashionctl="$bin_dir/fashionctl"
if [ "$bundle" = yes ]; then export LD_LIBRARY_PATH="$runtime${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi

# systemd units: the shipped files name /usr/bin; point them at this prefix.
for unit in fashiond.service fashiond.socket; do
    sed "s|/usr/bin/fashiond|$bindir/fashiond|g" "$repo/systemd/$unit" > "$root$unitdir/$unit"
    chmod 0644 "$root$unitdir/$unit"
done
install -m 0644 "$repo/systemd/fashiond.sysusers" "$root$prefix/lib/sysusers.d/fashiond.conf"

# Default configuration: every key commented out at its default. The model directory's default
# depends on where the binary sits, so it is written for the installed location.
config="$root$sysconfdir/fashiond/fashiond.toml"
if [ "$fresh_config" = yes ] || [ ! -e "$config" ]; then
    "$fashiond" --print-default-config \
        | sed "s|^#model_dir = .*|#model_dir = \"$datadir/fashiond/models\"|" > "$config.new"
    chmod 0644 "$config.new"
    mv "$config.new" "$config"
else
    echo "install-tree.sh: keeping existing $sysconfdir/fashiond/fashiond.toml" >&2
fi

# Models: one directory per model (model.onnx + metadata.json).
for model in "$repo"/models/*/; do
    name=$(basename "$model")
    install -d "$root$datadir/fashiond/models/$name"
    for file in "$model"*; do
        [ -f "$file" ] && install -m 0644 "$file" "$root$datadir/fashiond/models/$name/"
    done
done

# Shell completions, from fashionctl itself.
"$fashionctl" --generate-completion-script bash > "$root$datadir/bash-completion/completions/fashionctl"
"$fashionctl" --generate-completion-script zsh > "$root$datadir/zsh/vendor-completions/_fashionctl"
"$fashionctl" --generate-completion-script fish > "$root$datadir/fish/vendor_completions.d/fashionctl.fish"
chmod 0644 "$root$datadir/bash-completion/completions/fashionctl" "$root$datadir/zsh/vendor-completions/_fashionctl" \
    "$root$datadir/fish/vendor_completions.d/fashionctl.fish"

# Man pages, derived from --help so they cannot drift from the binaries.
"$repo/packaging/help-to-man.sh" --section 8 --name fashiond "$fashiond" | gzip -9n > "$root$mandir/man8/fashiond.8.gz"
"$repo/packaging/help-to-man.sh" --section 1 --name fashionctl "$fashionctl" | gzip -9n > "$root$mandir/man1/fashionctl.1.gz"
chmod 0644 "$root$mandir/man8/fashiond.8.gz" "$root$mandir/man1/fashionctl.1.gz"

# Operator documentation.
for doc in README.md docs/OPERATIONS.md docs/CONFIGURATION.md docs/API.md docs/CLI.md; do
    [ -f "$repo/$doc" ] && install -m 0644 "$repo/$doc" "$root$docdir/"
done

if [ -z "$root" ]; then
    cat <<EOF
fashiond installed under $prefix. To run it as a service:
  systemd-sysusers fashiond.conf        # creates the fashiond user and group
  systemctl daemon-reload
  systemctl enable --now fashiond.socket # fashionctl then starts the daemon on demand
  systemctl enable --now fashiond        # or: consume from boot
EOF
fi
