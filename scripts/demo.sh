#!/usr/bin/env bash
# Starts fashiond on the embedded broker, classifies the sample images and shows what to try next.
# Usage: scripts/demo.sh [DIR]   (state, socket and log go to DIR, default out/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$PWD/out/demo}"
bin="$PWD/.build/release"
mkdir -p "$dir"
export FASHIOND_SOCKET="$dir/control.sock"

if [ -f "$dir/fashiond.pid" ] && kill -0 "$(cat "$dir/fashiond.pid")" 2>/dev/null; then
  echo "demo: fashiond already running (pid $(cat "$dir/fashiond.pid"))"
else
  "$bin/fashiond" --state-dir "$dir/state" --socket "$FASHIOND_SOCKET" >"$dir/fashiond.log" 2>&1 &
  echo $! >"$dir/fashiond.pid"
  echo "demo: started fashiond (pid $!), log in $dir/fashiond.log"
fi

for _ in $(seq 1 100); do
  "$bin/fashionctl" status >/dev/null 2>&1 && break
  if ! kill -0 "$(cat "$dir/fashiond.pid")" 2>/dev/null; then
    echo "demo: fashiond exited; its log:" >&2; cat "$dir/fashiond.log" >&2; exit 1
  fi
  sleep 0.2
done

echo
"$bin/fashionctl" status
echo
echo "demo: classifying samples/*.png"
"$bin/fashionctl" submit --wait samples/*.png
echo
cat <<EOT
fashiond keeps running (pid $(cat "$dir/fashiond.pid")). Try next:
  export FASHIOND_SOCKET=$FASHIOND_SOCKET PATH=$bin:\$PATH
  fashionctl submit samples/sneaker.png          # publish an image; prints its request id
  fashionctl results --follow                    # the last 10 results, then live ones (Ctrl-C ends)
  fashionctl status                              # partitions, lag, throughput, the broker's address
  make demo-stop                                 # stop the daemon
EOT
