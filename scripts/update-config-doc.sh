#!/usr/bin/env bash
# Regenerates the key table in docs/CONFIGURATION.md from `fashiond --config-reference`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build/debug/fashiond}"
python3 - "$bin" <<'PY'
import subprocess, sys, re
table = subprocess.run([sys.argv[1], "--config-reference"], check=True, capture_output=True, text=True).stdout
doc = open("docs/CONFIGURATION.md").read()
start = doc.index("<!-- generated: fashiond --config-reference -->\n") + len("<!-- generated: fashiond --config-reference -->\n")
end = doc.index("\n## ", start)
open("docs/CONFIGURATION.md", "w").write(doc[:start] + table + doc[end:])
PY
