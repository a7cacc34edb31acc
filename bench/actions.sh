#!/usr/bin/env bash
# What resolving an already-cached remote action costs per step (issue 14: ≤ 50 ms): a job of
# 10 steps, each using a different remote composite action already in the cache, against the
# same job with the 10 actions as local `./` actions; (remote − local) / 10, medians of RUNS
# (default 9), runs alternating. Three ways of naming the remote ones:
#   by tag       `acme/aN@v1`: each job fetches the ref again (git over file://, no network);
#   by commit    `acme/aN@<full sha>`: checked out already, so no git at all;
#   offline      `acme/aN@v1` with --offline: the ref as recorded by the last fetch.
#
#   bench/actions.sh              build the release binary, then measure
#   HEARTH=path bench/actions.sh  measure that binary instead
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=${RUNS:-9}
steps=10
if [[ -z ${HEARTH:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth)
    HEARTH=${CARGO_TARGET_DIR:-$root/target}/release/hearth
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-actions-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME=$work/cache
g() { git -c user.name=bench -c user.email=bench@localhost "$@"; }

action='name: a
runs:
  using: composite
  steps:
    - run: "true"
      shell: sh
'
mkdir -p "$work/project/.forgejo/workflows"
declare -a shas
for n in $(seq 1 $steps); do
    dir=$work/actions/acme/a$n
    mkdir -p "$dir" "$work/project/local/a$n"
    printf '%s' "$action" >"$dir/action.yml"
    printf '%s' "$action" >"$work/project/local/a$n/action.yml"
    g -C "$dir" init -q && g -C "$dir" add -A && g -C "$dir" commit -q -m a && g -C "$dir" tag v1
    shas[n]=$(git -C "$dir" rev-parse HEAD)
done
workflow() { # workflow NAME USES (N: the action's number, SHA: its commit)
    local uses
    {
        printf 'on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n'
        for n in $(seq 1 $steps); do
            uses=${2//N/$n}
            printf '      - uses: %s\n' "${uses//SHA/${shas[n]}}"
        done
    } >"$work/project/.forgejo/workflows/$1.yml"
}
workflow local './local/aN'
workflow tag 'acme/aN@v1'
workflow commit 'acme/aN@SHA'
g -C "$work/project" init -q && g -C "$work/project" add -A && g -C "$work/project" commit -q -m p

run() { # run WORKFLOW [ARG...]
    "$HEARTH" exec -C "$work/project" -W "$work/project/.forgejo/workflows/$1.yml" \
        --default-actions-url "file://$work/actions" "${@:2}" >/dev/null
}
now() { python3 -c 'import time; print(time.perf_counter())'; }
measure() { local t0 t1; t0=$(now); run "${@:2}"; t1=$(now); python3 -c "print($t1 - $t0)" >>"$work/$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run tag && run commit # fills the cache
for _ in $(seq 1 "$runs"); do
    measure local local
    measure tag tag
    measure commit commit
    measure offline tag --offline
done
printf '%s; %d runs; load average %s\n' "$HEARTH" "$runs" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
base=$(median <"$work/local")
printf 'local actions: %.3f s for %d steps\n' "$base" "$steps"
status=0
for way in tag commit offline; do
    t=$(median <"$work/$way")
    per=$(python3 -c "print(round(($t - $base) / $steps * 1000, 1))")
    verdict=""
    python3 -c "import sys; sys.exit(0 if $per <= 50 else 1)" || { verdict=" — MISSED"; status=1; }
    printf 'by %s: %.3f s, %s ms per step over local (target ≤ 50 ms)%s\n' "$way" "$t" "$per" "$verdict"
done
exit $status
