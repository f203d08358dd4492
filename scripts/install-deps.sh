#!/usr/bin/env bash
# Installs the Debian packages fashiond builds and tests against. Idempotent; needs root (or sudo).
set -euo pipefail
packages=(
  pkg-config
  librdkafka-dev kcat          # Kafka client library (with its mock cluster) and a CLI producer
  libpng-dev libturbojpeg0-dev # image decoders
  libopenblas-dev              # GEMM for the inference engine
  libsystemd-dev               # sd_notify, sd_listen_fds, native journal logging
  libcurl4-openssl-dev         # Pub/Sub REST client
  dataset-fashion-mnist        # the real test set, for the accuracy test and samples
  zlib1g-dev
  libdeflate-dev                                   # whole-buffer inflate for small gray PNGs
  systemd-container dpkg-dev xz-utils              # the systemd test (nspawn sandbox) and `make deb`
  python3-venv python3-pip                         # virtualenvs for the Pub/Sub test client and `make bench`
  curl openssl openjdk-17-jre-headless             # the Pub/Sub emulator (preinstalled package) and its tests
  chromium chromium-driver                         # the browser test of `fashionctl web` (headless, WebDriver)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
