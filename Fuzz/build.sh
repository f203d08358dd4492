#!/usr/bin/env bash
# Builds the libFuzzer targets into OUT (default .build/fuzz): the library sources they exercise are
# compiled straight from Sources/ with swiftc (-sanitize=fuzzer,address), one module at a time, so the
# fuzzers test exactly the code the daemon runs. Rebuilds only when a source is newer than its output.
#
#   image-decoder     Imaging: ImageDecoder.decode (PNG via libpng and the small-gray fast path, JPEG via TurboJPEG, raw, prototype JSON)
#   prototype-json    Imaging: PrototypeJSON.parse and its JSON scanner
#   control-request   Daemon: RequestRouter (control API request validation behind NIO's HTTP parser)
#   http-response     ControlClient: HTTPResponseReader (what fashionctl parses off the control socket)
#   ndjson-lines      ControlClient: NDJSONLineSplitter (results stream into records)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-.build/fuzz}"
SWIFTC="${SWIFTC:-swiftc}"
mkdir -p "$OUT/modules"
OUT="$(cd "$OUT" && pwd)"
M="$OUT/modules"

# -O keeps the fuzzers fast (a debug build runs several times slower under ASan); bounds checks and
# preconditions stay on. -gline-tables-only gives symbolised crash stacks.
FLAGS=(-sanitize=fuzzer,address -parse-as-library -package-name fashiond -swift-version 6 -enable-upcoming-feature ExistentialAny
       -O -gline-tables-only -use-ld=lld -I "$M"
       -Xcc "-fmodule-map-file=$PWD/Sources/CPNG/module.modulemap"
       -Xcc "-fmodule-map-file=$PWD/Sources/CTurboJPEG/module.modulemap"
       -Xcc "-fmodule-map-file=$PWD/Sources/CZlib/module.modulemap"
       -Xcc "-fmodule-map-file=$PWD/Sources/CDeflate/module.modulemap")

# stale OUTPUT INPUT...: true if OUTPUT is missing or older than any input (or this script).
stale() {
    local output="$1"; shift
    [[ -e "$output" ]] || return 0
    local input
    for input in "$@" "$0"; do [[ "$input" -nt "$output" ]] && return 0; done
    return 1
}

# module NAME SOURCES...: one object file and one .swiftmodule per library module.
module() {
    local name="$1"; shift
    if stale "$M/$name.o" "$@"; then
        echo "fuzz: compiling module $name"
        "$SWIFTC" "${FLAGS[@]}" -wmo -enable-testing -module-name "$name" \
            -emit-module -emit-module-path "$M/$name.swiftmodule" -c -o "$M/$name.o" "$@"
    fi
}

# target NAME SOURCE OBJECTS... -- LIBS...
# Every target also gets Fuzz/Support (crash inputs go under OUT/crashes/, never the current directory).
target() {
    local name="$1" source="$2"; shift 2
    local objects=() libs=() support=(Fuzz/Support/*.swift)
    while [[ $# -gt 0 && "$1" != "--" ]]; do objects+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    libs=("$@")
    if stale "$OUT/$name" "$source" "${support[@]}" "${objects[@]}"; then
        echo "fuzz: linking $name"
        "$SWIFTC" "${FLAGS[@]}" -module-name "${name//-/_}_fuzzer" "$source" "${support[@]}" "${objects[@]}" "${libs[@]}" \
            -o "$OUT/$name"
    fi
}

module Shared Sources/Shared/*.swift
module Threads Sources/Threads/*.swift
module Imaging Sources/Imaging/*.swift
# Only the router of the Daemon module: it depends on Foundation and Shared alone, by design.
module Daemon Sources/Daemon/Control/Routing/*.swift
module ControlClient Sources/ControlClient/*.swift

target image-decoder Fuzz/Targets/ImageDecoderFuzzer.swift "$M/Shared.o" "$M/Imaging.o" -- -lpng -lturbojpeg -ldeflate -lz
target prototype-json Fuzz/Targets/PrototypeJSONFuzzer.swift "$M/Shared.o" "$M/Imaging.o" -- -lpng -lturbojpeg -ldeflate -lz
target control-request Fuzz/Targets/ControlRequestFuzzer.swift "$M/Shared.o" "$M/Daemon.o"
target http-response Fuzz/Targets/HTTPResponseFuzzer.swift "$M/Shared.o" "$M/Threads.o" "$M/ControlClient.o"
target ndjson-lines Fuzz/Targets/NDJSONSplitterFuzzer.swift "$M/Shared.o" "$M/Threads.o" "$M/ControlClient.o"
