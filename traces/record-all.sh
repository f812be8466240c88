#!/bin/sh
# Records the traces in this directory from real programs that no one here wrote (see README.md).
# Run as root from the repository root after `make install`:  sh traces/record-all.sh
set -eu
profiler="$(pwd)/.venv/bin/profiler"
out="$(pwd)/traces"
work=$(mktemp -d /tmp/profiler-traces.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

record() {  # record NAME COMPONENT [--user USER] -- COMMAND...
    name=$1; component=$2; shift 2
    "$profiler" record --force -o "$out/$name.trace.json" --component "$component" "$@"
}

# cargo: build a freshly generated crate offline, in debug then release mode.
cd "$work"
cargo new --quiet hello
cd hello
record cargo-build-debug cargo-build -- cargo build --offline --quiet
record cargo-build-release cargo-build -- cargo build --offline --release --quiet

# git: clone a local repository three ways, as an unprivileged user as a CI job would.
cd "$work"
git init --quiet source
git -C source -c user.name=demo -c user.email=demo@example.invalid commit --quiet --allow-empty -m first
echo "hello" > source/README && git -C source add README
git -C source -c user.name=demo -c user.email=demo@example.invalid commit --quiet -m second
chown -R nobody "$work"
record git-clone git-clone --user nobody -- git clone --quiet "$work/source" "$work/clone"
record git-clone-bare git-clone --user nobody -- git clone --quiet --bare "$work/source" "$work/bare.git"
record git-clone-shallow git-clone --user nobody -- git clone --quiet --depth 1 "file://$work/source" "$work/shallow"

# pip: install a wheel from a local directory into a fresh virtual environment, offline.
python3 -m venv "$work/venv"
"$work/venv/bin/pip" download --quiet --no-deps --dest "$work/wheels" six==1.16.0
record pip-install pip-install -- "$work/venv/bin/pip" install --quiet --no-index --find-links "$work/wheels" six

# The job a tool executor exists for, as an unprivileged user: a dependency audit of a requirements file with
# pip-audit from PyPI (its cache in /var/cache, made for nobody before the run: a unit gets ReadWritePaths= for a
# directory that was there, not CacheDirectory=, which would chown it), and cargo's own work on a small
# crate with Debian's cargo (root's rustup toolchain is in /root, which nobody cannot enter).
command -v /usr/bin/cargo >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q cargo >/dev/null
# The audit is installed where a deployment would put it, outside /tmp (a service's /tmp is its own) and readable by
# nobody: Debian's python3, since a venv of root's pyenv python links into /root, which nobody cannot enter. It is
# left in place: tests/generators/test_audit_unit.py runs the same job under the unit generated from this trace.
audit=/opt/profiler-pip-audit
[ -x "$audit/venv/bin/pip-audit" ] || {
    /usr/bin/python3 -m venv "$audit/venv"
    "$audit/venv/bin/pip" install --quiet pip-audit==2.10.1
}
printf 'requests==2.25.0\n' > "$audit/requirements.txt"
cache=/var/cache/profiler-pip-audit
mkdir -p "$cache" && chown nobody "$cache"
(cd / && record pip-audit pip-audit --user nobody -- \
    "$audit/venv/bin/pip-audit" --cache-dir "$cache" --requirement "$audit/requirements.txt" --progress-spinner off)
rm -rf "$cache"
cd "$work"
runuser -u nobody -- env HOME="$work" CARGO_HOME="$work/cargo-home" /usr/bin/cargo new --quiet unprivileged
cd unprivileged
record cargo-build-nobody cargo-build-nobody --user nobody -- \
    env CARGO_HOME="$work/cargo-home" /usr/bin/cargo build --offline --quiet

# curl: fetch a page from a local web server (the server itself is not recorded).
python3 -m http.server --bind 127.0.0.1 8765 --directory "$work/hello" >/dev/null 2>&1 &
server=$!
sleep 1
record curl-fetch curl -- curl --silent --show-error --output /dev/null http://127.0.0.1:8765/Cargo.toml
kill "$server"
