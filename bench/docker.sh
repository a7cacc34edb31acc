#!/usr/bin/env bash
# The Docker backend against its floors (issue 13's targets), on the test image that
# scripts/docker-test-env builds; medians of RUNS (default 7), the runs of hearth and of its
# floor alternating so that drift on a busy machine hits both alike.
#
#   (a) a one-step job in a container (`hearth exec`, whole process) against
#       `docker run --rm IMAGE true`: target ≤ 1.3×;
#   (a') the same job with `container.network: bridge` (Docker's default network, where jobs
#       are not kept apart), to show what the job's own network costs: no target of its own;
#   (b) 20 steps in one job container, against starting the container and twenty
#       `docker exec CONTAINER true` one after the other: target ≤ 1.3×;
#   (c) a one-step job with two services that have a health check, against doing the same by
#       hand: a network, the two services and the job container started with `docker run -d`,
#       `docker inspect` until both are healthy, `docker exec CONTAINER true`, then `docker rm
#       -f` of the three and `docker network rm`: target ≤ 1.3×.
#
#   bench/docker.sh              build the release binary, run each case RUNS times
#   HEARTH=path bench/docker.sh  measure that binary instead
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=${RUNS:-7}
image=hearth-test/busybox:1
"$root/scripts/docker-test-env" >/dev/null

if [[ -z ${HEARTH:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth)
    HEARTH=${CARGO_TARGET_DIR:-$root/target}/release/hearth
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-docker-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
repo=$work/repo
mkdir "$repo"
git -C "$repo" init -q
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -q --allow-empty -m bench

now() { python3 -c 'import time; print(time.perf_counter())'; }
elapsed() { python3 -c "print($2 - $1)"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

hearth_job() { # hearth_job WORKFLOW [ARG...]
    "$HEARTH" exec -W "$here/docker/$1" -C "$repo" --label "linux:docker://$image" "${@:2}" >/dev/null
}
printf 'container:\n  network: bridge\n' >"$work/bridge.yaml"
floor_run() { docker run --rm "$image" true >/dev/null; }
floor_execs() {
    local c
    c=$(docker run -d "$image" tail -f /dev/null)
    for _ in $(seq 1 20); do docker exec "$c" true; done
    docker rm -f "$c" >/dev/null
}

# As bench/docker/services2.yml has them.
health=(--health-cmd true --health-interval 200ms --health-retries 50)
floor_services() {
    local net=hearth-bench-$$
    docker network create "$net" >/dev/null
    for s in one two; do
        docker run -d --name "$net-$s" --network "$net" --network-alias "$s" "${health[@]}" \
            --entrypoint tail "$image" -f /dev/null >/dev/null
    done
    docker run -d --name "$net-job" --network "$net" --entrypoint tail "$image" -f /dev/null >/dev/null
    until [[ $(docker inspect -f '{{.State.Health.Status}}' "$net-one" "$net-two") == $'healthy\nhealthy' ]]; do
        :
    done
    docker exec "$net-job" true
    docker rm -f "$net-job" "$net-one" "$net-two" >/dev/null
    docker network rm "$net" >/dev/null
}

measure() { # measure NAME COMMAND... : appends one wall time to $work/NAME
    local t0 t1
    t0=$(now)
    "${@:2}"
    t1=$(now)
    elapsed "$t0" "$t1" >>"$work/$1"
}

hearth_job step1.yml # warm: the image's layers and the binary's pages
for _ in $(seq 1 "$runs"); do
    measure a_hearth hearth_job step1.yml
    measure a_floor floor_run
    measure a2_hearth hearth_job step1.yml -c "$work/bridge.yaml"
    measure b_hearth hearth_job steps20.yml
    measure b_floor floor_execs
    measure c_hearth hearth_job services2.yml
    measure c_floor floor_services
done
status=0
report() { # report LABEL CASE [FLOOR_CASE] — FLOOR_CASE given: a figure without a target
    local h f r
    h=$(median <"$work/$2_hearth")
    f=$(median <"$work/${3:-$2}_floor")
    r=$(ratio "$h" "$f")
    if [[ -n ${3:-} ]]; then
        printf '%s: %.3f s vs floor %.3f s = %s× (no target)\n' "$1" "$h" "$f" "$r"
        return
    fi
    local verdict=""
    python3 -c "import sys; sys.exit(0 if $r <= 1.3 else 1)" || { verdict=" — MISSED"; status=1; }
    printf '%s: %.3f s vs floor %.3f s = %s× (target ≤ 1.30×)%s\n' "$1" "$h" "$f" "$r" "$verdict"
}
printf '%s; %d runs; load average %s\n' "$HEARTH" "$runs" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
report "(a) one-step job in a container" a
report "(a') the same on Docker's default bridge" a2 a
report "(b) 20 steps in one job container" b
report "(c) a job with two healthy services" c
exit $status
