#!/usr/bin/env bash
# Regenerates Sources/Inference/ONNX/onnx_subset.pb.swift from proto/onnx_subset.proto.
#
# The generated file is committed, so building fashiond never needs protoc. Run this only after
# editing the schema. It needs protoc (Debian: `apt-get install -y protobuf-compiler`) and
# protoc-gen-swift built from the same swift-protobuf version the package resolves (1.39.0); the
# plugin is built once into a cache directory (override with PROTOC_GEN_SWIFT=/path/to/plugin).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
swift_protobuf_version="${SWIFT_PROTOBUF_VERSION:-1.39.0}"
swift_protobuf_url="${SWIFT_PROTOBUF_URL:-https://github.com/apple/swift-protobuf}"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/fashiond/swift-protobuf-${swift_protobuf_version}"

if ! command -v protoc >/dev/null 2>&1; then
    echo "generate-protos: protoc not found; install it with: apt-get install -y protobuf-compiler" >&2
    exit 1
fi

plugin="${PROTOC_GEN_SWIFT:-}"
if [[ -z "$plugin" ]]; then
    plugin="$cache_dir/.build/release/protoc-gen-swift"
    if [[ ! -x "$plugin" ]]; then
        echo "generate-protos: building protoc-gen-swift ${swift_protobuf_version} in $cache_dir (takes minutes)" >&2
        if [[ ! -d "$cache_dir/.git" ]]; then
            mkdir -p "$(dirname "$cache_dir")"
            git clone --quiet --depth 1 --branch "$swift_protobuf_version" "$swift_protobuf_url" "$cache_dir"
        fi
        (cd "$cache_dir" && swift build -c release --product protoc-gen-swift)
    fi
fi

out_dir="$repo_root/Sources/Inference/ONNX"
mkdir -p "$out_dir"
# Internal visibility: the ONNX types are an implementation detail of the Inference target.
protoc \
    --plugin="protoc-gen-swift=$plugin" \
    --proto_path="$repo_root/proto" \
    --swift_opt=Visibility=Internal \
    --swift_opt=FileNaming=DropPath \
    --swift_out="$out_dir" \
    "$repo_root/proto/onnx_subset.proto"
echo "generate-protos: wrote $out_dir/onnx_subset.pb.swift"
