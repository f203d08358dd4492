#!/usr/bin/env bash
# The Google Cloud Pub/Sub emulator for the tests.
#
#   emulator.sh check          exit 0 if the emulator and Java are installed, else say what is missing
#   emulator.sh ensure PID     print host:port of the emulator shared by test process PID, starting it
#                              on a free port if needed; it stops by itself when PID exits
#
# One emulator serves a whole test process (its JVM takes seconds to start): the first caller starts
# it under a lock, later callers (other suites of the same process) find its address.
set -euo pipefail

find_launcher() {
  if [ -n "${PUBSUB_EMULATOR_LAUNCHER:-}" ]; then echo "$PUBSUB_EMULATOR_LAUNCHER"; return; fi
  dpkg -L google-cloud-cli-pubsub-emulator 2>/dev/null | grep '/bin/cloud-pubsub-emulator$' | head -n 1 || true
}

check() {
  local launcher
  launcher="$(find_launcher)"
  if [ -z "$launcher" ] || [ ! -x "$launcher" ]; then
    echo "The Google Cloud Pub/Sub emulator is not installed: the Pub/Sub tests need the Debian package" \
         "google-cloud-cli-pubsub-emulator (its cloud-pubsub-emulator launcher) and a Java runtime." >&2
    return 3
  fi
  if ! command -v java >/dev/null 2>&1; then
    echo "The Pub/Sub emulator needs Java, and no 'java' is on PATH (apt-get install default-jre-headless)." >&2
    return 3
  fi
  echo "$launcher"
}

ensure() {
  local owner="$1" launcher state addr port emulator
  launcher="$(check)"
  state="/tmp/fashiond-pubsub-emulator-$owner"
  exec 9>"$state.lock"
  flock 9
  if [ -f "$state.addr" ]; then
    addr="$(cat "$state.addr")"
    if curl -fsS -m 2 "http://$addr/" >/dev/null 2>&1; then echo "$addr"; return 0; fi
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Its own session, so the watchdog can stop the launcher and the JVM it execs as one group.
  setsid "$launcher" --host=127.0.0.1 --port="$port" >"$state.log" 2>&1 </dev/null 9>&- &
  emulator=$!
  (
    while kill -0 "$owner" 2>/dev/null && kill -0 "$emulator" 2>/dev/null; do sleep 1; done
    kill -TERM -- "-$emulator" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$emulator" 2>/dev/null || true
    rm -f "$state.addr" "$state.lock" "$state.log"
  ) </dev/null >/dev/null 2>&1 9>&- &
  disown -a
  for _ in $(seq 1 600); do
    if curl -fsS -m 1 "http://127.0.0.1:$port/" >/dev/null 2>&1; then
      echo "127.0.0.1:$port" >"$state.addr"
      echo "127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$emulator" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "the Pub/Sub emulator did not start on 127.0.0.1:$port:" >&2
  tail -n 20 "$state.log" >&2 || true
  kill -KILL -- "-$emulator" 2>/dev/null || true
  return 1
}

case "${1:-}" in
  check) check >/dev/null && echo "Pub/Sub emulator: $(find_launcher)" ;;
  ensure) ensure "${2:?usage: emulator.sh ensure OWNER_PID}" ;;
  *) echo "usage: emulator.sh check | ensure OWNER_PID" >&2; exit 2 ;;
esac
