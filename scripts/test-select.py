#!/usr/bin/env python3
"""Turn Swift Testing tags into `swift test` arguments.

Swift Testing 6.3 selects tests by name only (`--filter`, `--skip`); it cannot select by tag on the
command line. This asks the built test bundle for its tests and their tags (`--list-tests` with the
event stream, whose records carry each suite's and test's own tags), adds the tags every test inherits
from its suites, and prints `--filter` arguments naming exactly the tests whose tags match:

    swift build --build-tests
    swift test --skip-build $(scripts/test-select.py unit --skip slow)   # the unit tests but the slow ones
    swift test --skip-build $(scripts/test-select.py broker emulator)    # the tests carrying either tag
    scripts/test-select.py --list unit --skip slow                       # which tests, by name
    scripts/test-select.py --run unit --skip slow -- --no-parallel       # runs the selection
    scripts/test-select.py --check                                       # is every suite tagged?

Positional tags: a test is selected when it carries any of them (no tags: every test); `--skip TAG`
(repeatable) then removes the tests that carry TAG. The tags are declared in Tests/TestSupport/Tags.swift.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a test needs: every test must carry one of these, directly or from a suite (docs/TESTING.md).
KINDS = {".unit", ".broker", ".emulator", ".systemd", ".root"}
REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


def escape(text: str) -> str:
    return "".join("\\" + c if c in REGEX_SPECIAL else c for c in text)


def find_bundle(build_path: Path) -> Path:
    bundles = sorted(glob.glob(str(build_path / "debug" / "*PackageTests.xctest")))
    if not bundles:
        sys.exit(f"test-select: no test bundle under {build_path}/debug: run `swift build --build-tests` first")
    return Path(bundles[0])


def list_tests(bundle: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as directory:
        stream = Path(directory) / "tests.jsonl"
        environment = dict(os.environ, SWT_EXPERIMENTAL_EVENT_STREAM_FIELDS_ENABLED="1")
        result = subprocess.run(
            [str(bundle), "--testing-library", "swift-testing", "--list-tests",
             "--event-stream-output-path", str(stream), "--event-stream-version", "0"],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0 or not stream.exists():
            sys.exit(f"test-select: listing the tests of {bundle} failed:\n{result.stderr}")
        records = [json.loads(line) for line in stream.read_text().splitlines() if line.strip()]
    tests = [record["payload"] for record in records if record.get("kind") == "test"]
    if tests and not any("_tags" in test for test in tests):
        sys.exit("test-select: the test bundle reported no tags at all; this toolchain's event stream may "
                 "have renamed the experimental `_tags` field (Swift 6.3 writes it)")
    return tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tags", nargs="*", help="select the tests carrying any of these tags (default: all)")
    parser.add_argument("--skip", action="append", default=[], metavar="TAG", help="leave out tests carrying TAG")
    parser.add_argument("--list", action="store_true", help="print the selected tests' names, one a line")
    parser.add_argument("--check", action="store_true",
                        help="fail unless every test carries one of unit, broker, emulator, systemd, root")
    parser.add_argument("--run", action="store_true",
                        help="run the selection (the built test bundle, as `swift test --skip-build` does) with "
                             "the arguments after `--` (Swift Testing's: --no-parallel, --xunit-output ...)")
    parser.add_argument("--build-path", type=Path, default=ROOT / ".build")
    argv = sys.argv[1:]
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    include = {"." + tag.lstrip(".") for tag in args.tags}
    exclude = {"." + tag.lstrip(".") for tag in args.skip}

    bundle = find_bundle(args.build_path)
    tests = list_tests(bundle)
    suites = [test for test in tests if test["kind"] == "suite"]

    def ancestors(test: dict) -> list[dict]:
        return [suite for suite in suites
                if test["id"] != suite["id"] and test["id"].startswith(suite["id"]) and
                test["id"][len(suite["id"])] in "/."]

    def effective_tags(test: dict) -> set[str]:
        tags = set(test.get("_tags", []))
        for suite in ancestors(test):
            tags |= set(suite.get("_tags", []))
        return tags

    functions = [test for test in tests if test["kind"] == "function"]
    untagged = sorted({f["id"].split("/")[0] for f in functions if not effective_tags(f) & KINDS})
    if untagged:
        print(f"test-select: {len(untagged)} suites carry none of the tags {', '.join(sorted(KINDS))}, so no "
              f"tag selects them; tag them (docs/TESTING.md): {', '.join(untagged)}", file=sys.stderr)
        if args.check:
            sys.exit(1)
    elif args.check:
        print(f"test-select: every one of {len(functions)} tests carries one of {', '.join(sorted(KINDS))}")
        return
    selected = set()
    for function in functions:
        tags = effective_tags(function)
        if (not include or tags & include) and not tags & exclude:
            selected.add(function["id"])
    if args.list:
        for function in functions:
            if function["id"] in selected:
                print(function["id"])
        return

    # Name whole suites where every test in them is selected, single tests elsewhere.
    def whole(suite: dict) -> bool:
        inside = [f["id"] for f in functions if suite in ancestors(f)]
        return bool(inside) and all(identifier in selected for identifier in inside)

    complete = [suite for suite in suites if whole(suite)]
    topmost = [suite for suite in complete if not any(parent in complete for parent in ancestors(suite))]
    covered = {f["id"] for f in functions if any(suite in ancestors(f) for suite in topmost)}
    patterns = ["^" + escape(suite["id"]) + "$" for suite in sorted(topmost, key=lambda suite: suite["id"])]
    patterns += ["^" + escape(identifier) + "$" for identifier in sorted(selected - covered)]
    if not patterns:
        print("test-select: no test matches; selecting none", file=sys.stderr)
        patterns = ["^$"]
    arguments = [argument for pattern in patterns for argument in ("--filter", pattern)]
    if args.run:
        # The bundle itself, as `swift test --skip-build` would run it: SwiftPM 6.3's `swift test` leaves the
        # build plan so that the next `swift build --build-tests` recompiles swift-protobuf (~1 min here).
        command = [str(bundle), "--testing-library", "swift-testing", *passthrough, *arguments]
        print(f"test-select: {len(selected)} tests, {len(patterns)} filters", file=sys.stderr)
        os.execv(command[0], command)
    # No quotes: the patterns hold no white space or glob characters, so `$(...)` passes them unchanged.
    print(" ".join(arguments))


if __name__ == "__main__":
    main()
