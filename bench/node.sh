#!/usr/bin/env bash
# A JavaScript action in a container job whose image has no node (the runner lends its own,
# issue 14) against the same action where the image has one: the action step's own duration
# (`duration_ms` of its step_finished event), medians of RUNS (default 9), runs alternating.
# The image with node is the Debian test image with the runner's own node installed in
# /usr/local/bin (hearth-bench/node:1, built here), so both run the same node binary and the
# difference is the lending. Target: the lent node costs ≤ 0.3 s more. Also prints the one-time
# cost of bundling the runner's node (a cold externals folder).
#
#   bench/node.sh              build the release binary, then measure
#   HEARTH=path bench/node.sh  measure that binary instead
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=${RUNS:-9}
"$root/scripts/docker-test-env" >/dev/null
if [[ -z ${HEARTH:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth)
    HEARTH=${CARGO_TARGET_DIR:-$root/target}/release/hearth
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-node-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$here/node/." "$work/repo"
git -C "$work/repo" init -q
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=bench -c user.email=bench@localhost commit -q -m bench
export XDG_CACHE_HOME=$work/cache

node_image=hearth-bench/node:1
if ! docker image inspect "$node_image" >/dev/null 2>&1; then
    mkdir "$work/image"
    cp "$(readlink -f "$(command -v node)")" "$work/image/node"
    printf 'FROM hearth-test/debian:1\nCOPY node /usr/local/bin/node\n' >"$work/image/Dockerfile"
    docker build -q -t "$node_image" "$work/image" >/dev/null
    rm -rf "$work/image"
fi

step_ms() { # step_ms IMAGE: the action step's duration in one run
    "$HEARTH" exec --json -W "$work/repo/workflow.yml" -C "$work/repo" \
        --label "linux:docker://$1" | python3 -c '
import json, sys
for line in sys.stdin:
    event = json.loads(line)
    if event.get("event") == "step_finished":
        print(event["duration_ms"])'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cold=$(step_ms hearth-test/busybox:1)
for _ in $(seq 1 "$runs"); do
    step_ms hearth-test/busybox:1 >>"$work/lent"
    step_ms "$node_image" >>"$work/image"
done
lent=$(median <"$work/lent")
image=$(median <"$work/image")
over=$((lent - image))
printf '%s; %d runs; load average %s\n' "$HEARTH" "$runs" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
printf 'the action step, node lent (busybox image): %s ms; the same node in the image: %s ms\n' "$lent" "$image"
printf 'first run, bundling the runner'"'"'s node: %s ms\n' "$cold"
verdict=""
((over <= 300)) || verdict=" — MISSED"
printf 'overhead of the lent node: %d ms (target ≤ 300 ms)%s\n' "$over" "$verdict"
[[ -z $verdict ]]
