#!/bin/sh
# make demo: record the bundled tool executor, then generate its systemd policy and check the run against it.
set -eu
profiler=.venv/bin/profiler

echo "== 1. record: run the workload under the eBPF tracer"
# Its cache as a previous run left it: recorded where it is not there yet, the run makes it and the unit gets
# CacheDirectory=, which systemd makes; one there before the run gets ReadWritePaths= (systemd chowns a managed
# directory that is there, and all in it).
rm -rf /var/cache/tool-executor
$profiler record --force -o demo.trace.json --component tool-executor -- .venv/bin/python demo/tool_executor.py

echo
echo "== 2. show: what it used"
$profiler show demo.trace.json

echo "== 3. generate: the tightest systemd drop-in, every line explained in a comment (demo.profiler.conf)"
$profiler generate --force --format systemd -o demo.profiler.conf demo.trace.json
grep -v -e '^#' -e '^SystemCallFilter=[a-z]' demo.profiler.conf | sed 's/^/    /'
echo "    ... and $(grep -c '^SystemCallFilter=[a-z]' demo.profiler.conf) SystemCallFilter= lines, one syscall each"

echo
echo "== 4. check: does the policy allow everything the recorded run did?"
$profiler check --policy demo.profiler.conf demo.trace.json
