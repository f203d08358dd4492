#!/bin/bash
# A throwaway systemd machine for testing fashiond's units: systemd runs as PID 1 inside
# systemd-nspawn, on an overlay whose lower layer is this host's root (read-only) and whose upper
# layer is a tmpfs. Nothing it does reaches the host's files, /run, /tmp, network or init system.
#
#   scripts/systemd-sandbox.sh boot STATE_DIR [--max-seconds N] [--remove-state]
#       Boots the sandbox and stays in the foreground until its standard input is closed (or it is
#       sent SIGTERM/SIGINT, or N seconds pass; default 600), then tears it down. Writes
#       STATE_DIR/leader (host PID of the sandbox's systemd) and STATE_DIR/ready once systemd is up,
#       STATE_DIR/failed with the reason if booting fails, STATE_DIR/console.log (systemd's console).
#       --remove-state deletes STATE_DIR after the teardown (for callers that may die first).
#   scripts/systemd-sandbox.sh exec STATE_DIR [--] COMMAND [ARG...]
#       Runs COMMAND inside the sandbox (all its namespaces, its root, a clean environment), with
#       this process's standard input and output. `systemctl` there talks to the sandbox's systemd.
#   scripts/systemd-sandbox.sh copy-in STATE_DIR HOST_FILE SANDBOX_PATH
#       Copies a host file into the sandbox.
#   scripts/systemd-sandbox.sh shell
#       Boots a sandbox, opens an interactive shell in it, tears it down when the shell exits.
#
# Layout while it runs (host view):
#   holder (this script, `boot`)            host namespaces; tears everything down
#   └─ unshare --mount --pid --kill-child   own mount + PID namespace; tmpfs over /run and /tmp
#      └─ systemd-nspawn --register=no --keep-unit --private-network, in its own cgroup
#         └─ systemd (PID 1 of the sandbox) → fashiond-sandbox.target: only journald
# The cgroup (unified and name=systemd hierarchies, or the cgroup2 root on a unified host) is
# created first, so the sandbox's systemd does not take over the hierarchies' roots. If the holder
# is killed, the kernel kills the namespace (parent-death signal) and mounts vanish with it; the
# next boot removes cgroups left empty by such a kill.
# Needs root, systemd-nspawn (apt-get install systemd-container), overlayfs, util-linux.
set -euo pipefail

self=$(readlink -f "$0")
prog=systemd-sandbox.sh

die() { echo "$prog: $*" >&2; exit 1; }

usage() { sed -n '2,23p' "$self" | sed 's/^# \{0,1\}//'; exit 2; }

# The cgroup hierarchies the sandbox needs its own group in.
cgroup_roots() {
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        echo /sys/fs/cgroup
    else
        [ -d /sys/fs/cgroup/unified ] && echo /sys/fs/cgroup/unified
        [ -d /sys/fs/cgroup/systemd ] && echo /sys/fs/cgroup/systemd
    fi
    return 0
}

preflight() {
    [ "$(id -u)" -eq 0 ] || die "must run as root: it mounts an overlay, creates cgroups and boots systemd in systemd-nspawn"
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn not found; install it with: apt-get install systemd-container"
    local tool
    for tool in unshare nsenter setpriv mount; do
        command -v "$tool" >/dev/null || die "$tool not found (util-linux / mount)"
    done
    [ -x /lib/systemd/systemd ] || [ -x /usr/lib/systemd/systemd ] || die "systemd is not installed on this host (apt-get install systemd)"
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
    grep -qw overlay /proc/filesystems || die "the kernel has no overlay file system"
    [ -n "$(cgroup_roots)" ] || die "no cgroup hierarchy for systemd found under /sys/fs/cgroup (need cgroup2, or the unified and name=systemd hierarchies)"
}

# Removes cgroups of earlier sandboxes that were killed before they could clean up (empty ones only).
remove_stale_cgroups() {
    local root dir
    for root in $(cgroup_roots); do
        for dir in "$root"/fashiond-sandbox-*; do
            [ -d "$dir" ] || continue
            # The name carries the holder's PID: a live holder is still setting up or using it.
            kill -0 "${dir##*-}" 2>/dev/null && continue
            if find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -q .; then continue; fi
            find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
    done
}

# ---------------------------------------------------------------------------------------------
# Inside the private mount and PID namespace (PID 1 there): build the overlay, exec nspawn.
inner() {
    local state=$1
    # Opened before /tmp is covered: the state directory may well live under the host's /tmp.
    exec 3>>"$state/console.log"
    mount -t tmpfs -o mode=0755 fashiond-sandbox-run /run
    mount -t tmpfs -o mode=1777 fashiond-sandbox-tmp /tmp
    local base=/tmp/sandbox
    mkdir -p "$base"
    mount -t tmpfs -o mode=0755 fashiond-sandbox-overlay "$base"
    mkdir -p "$base/upper" "$base/work" "$base/root"
    local units="$base/upper/etc/systemd/system"
    mkdir -p "$units"
    # A minimal boot: journald and nothing else; units under test are started explicitly.
    cat > "$units/fashiond-sandbox.target" <<'EOF'
[Unit]
Description=fashiond test sandbox (journald only)
Requires=systemd-journald.socket systemd-journald.service
After=systemd-journald.socket systemd-journald.service
AllowIsolate=yes
EOF
    mount -t overlay fashiond-sandbox -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
    exec systemd-nspawn --quiet --directory="$base/root" --machine=fashiond-sandbox --register=no --keep-unit \
        --private-network --console=pipe --link-journal=no --resolv-conf=off --timezone=off \
        --boot -- systemd.unit=fashiond-sandbox.target systemd.show_status=0 </dev/null >&3 2>&3 3>&-
}

# ---------------------------------------------------------------------------------------------
cmd_boot() {
    local state=${1:-}
    [ -n "$state" ] || usage
    shift
    local max_seconds=600 remove_state=no
    while [ $# -gt 0 ]; do
        case "$1" in
            --max-seconds) max_seconds=$2; shift 2 ;;
            --remove-state) remove_state=yes; shift ;;
            *) usage ;;
        esac
    done
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    rm -f "$state/leader" "$state/ready" "$state/failed" "$state/down"
    : > "$state/console.log"
    fail() { echo "$*" > "$state/failed"; echo "$prog: $*" >&2; }
    local problem
    if ! problem=$( (preflight) 2>&1 ); then fail "${problem#"$prog: "}"; exit 1; fi
    remove_stale_cgroups

    local name="fashiond-sandbox-$$" root
    local cgroups=()
    for root in $(cgroup_roots); do
        mkdir "$root/$name"
        cgroups+=("$root/$name")
    done

    # The container manager runs in the new cgroup; the holder stays outside so it can remove it.
    # setpriv: if the holder dies, unshare is killed, and with it (--kill-child) the whole namespace.
    (
        for dir in "${cgroups[@]}"; do echo "$BASHPID" > "$dir/cgroup.procs"; done
        exec setpriv --pdeathsig KILL -- unshare --mount --pid --fork --kill-child --mount-proc --propagation private \
            -- "$self" __inner "$state"
    ) &
    local unshare_pid=$!

    teardown() {
        trap - TERM INT HUP EXIT
        local leader nspawn
        leader=$(cat "$state/leader" 2>/dev/null || true)
        rm -f "$state/leader" "$state/ready"
        nspawn=$(pgrep -P "$unshare_pid" 2>/dev/null | head -n 1 || true)
        # Ask the sandbox's systemd to power off (SIGRTMIN+4), so services stop as on a real machine.
        if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then kill -s RTMIN+4 "$leader" 2>/dev/null || true; fi
        local waited=0
        while kill -0 "$unshare_pid" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
        if kill -0 "$unshare_pid" 2>/dev/null; then
            [ -n "$nspawn" ] && kill -KILL "$nspawn" 2>/dev/null || true
            kill -KILL "$unshare_pid" 2>/dev/null || true
        fi
        wait "$unshare_pid" 2>/dev/null || true
        # The kernel needs a moment to empty the cgroups of the killed processes.
        local dir tries
        for dir in "${cgroups[@]}"; do
            for tries in $(seq 50); do
                find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [ -d "$dir" ] || break
                sleep 0.1
            done
            [ -d "$dir" ] && echo "$prog: could not remove cgroup $dir" >&2
        done
        touch "$state/down"
        if [ "$remove_state" = yes ]; then
            if [ -e "$state/failed" ]; then
                # The caller reads the reason first and then closes our stdin (or dies).
                local until=$((SECONDS + 60))
                while [ $SECONDS -lt $until ]; do
                    read -r -t 1 _ && continue
                    [ $? -gt 128 ] || break
                done
            fi
            rm -rf "$state"
        fi
    }
    trap 'teardown; exit 0' TERM INT HUP
    trap 'teardown' EXIT

    # Wait for the sandbox's systemd, then for it to finish booting.
    local leader="" nspawn="" deadline=$((SECONDS + 60))
    while [ -z "$leader" ]; do
        if ! kill -0 "$unshare_pid" 2>/dev/null; then fail "systemd-nspawn exited during boot: $(tail -n 20 "$state/console.log")"; exit 1; fi
        [ $SECONDS -lt $deadline ] || { fail "the sandbox's systemd did not start within 60 s"; exit 1; }
        nspawn=$(pgrep -P "$unshare_pid" 2>/dev/null | head -n 1 || true)
        [ -n "$nspawn" ] && leader=$(pgrep -P "$nspawn" -x systemd 2>/dev/null | head -n 1 || true)
        [ -n "$leader" ] || sleep 0.05
    done
    echo "$leader" > "$state/leader"
    local system_state=""
    while :; do
        system_state=$(nsenter --target "$leader" --all -- /usr/bin/systemctl is-system-running 2>/dev/null || true)
        case "$system_state" in
            running) break ;;
            degraded)
                fail "the sandbox booted degraded: $(nsenter --target "$leader" --all -- /usr/bin/systemctl --failed --no-legend 2>&1)"
                exit 1 ;;
        esac
        kill -0 "$unshare_pid" 2>/dev/null || { fail "the sandbox stopped during boot: $(tail -n 20 "$state/console.log")"; exit 1; }
        [ $SECONDS -lt $deadline ] || { fail "the sandbox did not finish booting within 60 s (state: ${system_state:-none})"; exit 1; }
        sleep 0.05
    done
    touch "$state/ready"

    # Stay up until stdin closes, a signal arrives, the time limit passes or the sandbox dies.
    local stop_at=$((SECONDS + max_seconds)) status
    while kill -0 "$unshare_pid" 2>/dev/null; do
        if read -r -t 1 _; then continue; else status=$?; fi
        if [ "$status" -le 128 ]; then break; fi
        if [ $SECONDS -ge $stop_at ]; then echo "$prog: --max-seconds $max_seconds reached; tearing down" >&2; break; fi
    done
    exit 0
}

# Runs a command inside the sandbox with a clean environment.
cmd_exec() {
    local state=${1:-}
    [ -n "$state" ] || usage
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || usage
    local leader
    leader=$(cat "$state/leader" 2>/dev/null) || die "no sandbox is running for $state (boot it first)"
    exec nsenter --target "$leader" --all -- /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 SYSTEMD_LESS= "$@"
}

cmd_copy_in() {
    local state=${1:-} source=${2:-} target=${3:-}
    [ -n "$state" ] && [ -n "$source" ] && [ -n "$target" ] || usage
    local leader
    leader=$(cat "$state/leader" 2>/dev/null) || die "no sandbox is running for $state (boot it first)"
    mkdir -p "/proc/$leader/root$(dirname "$target")"
    cp "$source" "/proc/$leader/root$target"
}

cmd_shell() {
    local state
    state=$(mktemp -d -p /tmp --suffix=.fashiond-sandbox)
    local fifo="$state/keepalive"
    mkfifo "$fifo"
    "$self" boot "$state" < "$fifo" &
    local holder=$!
    exec 9> "$fifo"
    while [ ! -e "$state/ready" ]; do
        if [ -e "$state/failed" ] || ! kill -0 "$holder" 2>/dev/null; then cat "$state/failed" 2>/dev/null >&2; exit 1; fi
        sleep 0.05
    done
    echo "sandbox up (state in $state); exit the shell to tear it down" >&2
    "$self" exec "$state" /bin/bash -l || true
    exec 9>&-
    wait "$holder" || true
    rm -rf "$state"
}

case "${1:-}" in
    boot) shift; cmd_boot "$@" ;;
    exec) shift; cmd_exec "$@" ;;
    copy-in) shift; cmd_copy_in "$@" ;;
    shell) shift; cmd_shell "$@" ;;
    __inner) shift; inner "$@" ;;
    *) usage ;;
esac
