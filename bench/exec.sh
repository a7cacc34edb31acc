#!/usr/bin/env bash
# End-to-end benchmarks of `hearth exec` (issue 5's targets); see bench/README.md.
#
#   bench/exec.sh                build the release binary, run each case RUNS times (default 7)
#   RUNS=11 bench/exec.sh        more runs
#   HEARTH=path bench/exec.sh    measure that binary instead of building one
#
# (a) one job of 100 `run: true` steps, against the floor of spawning
#     `bash --noprofile --norc -eo pipefail -c true` 100 times one after the other (from
#     Python's subprocess.run, timed inside Python): ≤ 1.30× the floor (medians; the runs of
#     both alternate, so that drift on a busy machine hits both alike);
# (b) one step `cat`ting 200,000 lines of ~80 characters with 50 secrets given through
#     --secret-file, one line in twenty holding one: ≥ 100 MB/s, as bytes / the whole
#     `hearth exec` time (median), stdout to /dev/null; also shown over the time minus that of
#     the same job printing nothing;
# (c) a 16-way matrix of one-step jobs, default --jobs (the number of cores): whole
#     `hearth exec` ≤ 0.15 s (median);
# and in each, hearth's peak RSS ≤ 15 MiB: its VmHWM, polled from /proc, in 3 more runs (the
# largest; `/usr/bin/time -f %M`, which also counts the children, alongside).
#
# Wall times are taken by bench/exec/measure.py around the process (spawn to reaped).
# Prints one line per case and exits 1 if any target is missed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=${RUNS:-7}
measure=(python3 "$here/exec/measure.py")

if [[ -z ${HEARTH:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth)
    HEARTH=${CARGO_TARGET_DIR:-$root/target}/release/hearth
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
repo=$work/repo
mkdir "$repo"
git -C "$repo" init -q
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -q --allow-empty -m bench
bytes=$("${measure[@]}" gen "$work")
# Where the jobs' folders go matters: see bench/README.md on ext4 without a journal.
printf '%s; TMPDIR %s (%s); %d cores; load average %s\n' "$HEARTH" "${TMPDIR:-/tmp}" \
    "$(stat -f -c %T "${TMPDIR:-/tmp}")" "$(nproc)" "$(cut -d ' ' -f 1-3 /proc/loadavg)"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# holds VALUE OP LIMIT: compares in floating point.
holds() { awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; }

# time_once [--out FILE] -- COMMAND...: runs COMMAND once and sets T to its wall time.
time_once() {
    T=$("${measure[@]}" run "$@") || {
        echo "failed: $*" >&2
        exit 1
    }
}

# rss COMMAND...: runs COMMAND 3 times; sets RSS (the largest VmHWM, KB) and RSS_LINE.
rss_limit=$((15 * 1024))
rss() {
    local i out hwm=0 all=0 h m
    for i in 1 2 3; do
        out=$("${measure[@]}" rss -- "$@") || {
            echo "failed: $*" >&2
            exit 1
        }
        read -r h m <<<"$out"
        if ((h > hwm)); then hwm=$h; fi
        if ((m > all)); then all=$m; fi
    done
    RSS=$hwm
    RSS_LINE=$(awk -v h="$hwm" -v m="$all" \
        'BEGIN { printf "peak RSS %.1f MB (%d KB; /usr/bin/time %d KB)", h / 1024, h, m }')
}

status=0
# verdict CONDITION_HELD...: sets MISSED to "" when all are "yes", else to " — MISSED"
# (and the exit status becomes 1).
verdict() {
    MISSED=""
    local ok
    for ok in "$@"; do
        if [[ $ok != yes ]]; then
            MISSED=" — MISSED"
            status=1
        fi
    done
}
yes_if() { if "$@"; then echo yes; else echo no; fi; }

# (a) 100 steps against the floor.
cmd=("$HEARTH" exec -W "$here/exec/steps100.yml" -C "$repo")
time_once -- "${cmd[@]}" # warm-up
times=() floors=()
for ((i = 0; i < runs; i++)); do
    floors+=("$("${measure[@]}" floor 100)")
    time_once -- "${cmd[@]}"
    times+=("$T")
done
rss "${cmd[@]}"
t=$(printf '%s\n' "${times[@]}" | median)
f=$(printf '%s\n' "${floors[@]}" | median)
ratio=$(awk -v t="$t" -v f="$f" 'BEGIN { printf "%.2f", t / f }')
verdict "$(yes_if holds "$ratio" "<=" 1.30)" "$(yes_if holds "$RSS" "<=" "$rss_limit")"
printf '(a) 100 steps: %.3f s vs floor %.3f s = %s× (target ≤ 1.30×); %s%s\n' \
    "$t" "$f" "$ratio" "$RSS_LINE" "$MISSED"
echo "    runs: hearth ${times[*]}; floor ${floors[*]}"

# (b) 16 MB of output through masking and the console sink. The output is checked once: no
# secret may appear in it.
cmd=("$HEARTH" exec -W "$here/exec/output.yml" -C "$repo" --secret-file "$work/secrets")
BENCH_LINES=$work/lines.txt time_once --out "$work/output" -- "${cmd[@]}"
if grep -qF -f "$work/secret-values" "$work/output"; then
    echo "(b) a secret was not masked in the output" >&2
    exit 1
fi
masked=$(grep -c '\*\*\*' "$work/output" || true)
times=() empty=()
for ((i = 0; i < runs; i++)); do
    BENCH_LINES=$work/lines.txt time_once -- "${cmd[@]}"
    times+=("$T")
    # The same job printing nothing: what hearth costs besides the output.
    BENCH_LINES=/dev/null time_once -- "${cmd[@]}"
    empty+=("$T")
done
BENCH_LINES=$work/lines.txt rss "${cmd[@]}"
t=$(printf '%s\n' "${times[@]}" | median)
e=$(printf '%s\n' "${empty[@]}" | median)
rate=$(awk -v b="$bytes" -v t="$t" 'BEGIN { printf "%.0f", b / t / 1e6 }')
net=$(awk -v b="$bytes" -v t="$t" -v e="$e" 'BEGIN { printf "%.0f", b / (t - e) / 1e6 }')
verdict "$(yes_if holds "$rate" ">=" 100)" "$(yes_if holds "$RSS" "<=" "$rss_limit")"
printf '(b) %.1f MB output, 50 secrets: %s MB/s = bytes / %.3f s end to end (target ≥ 100 MB/s; %s MB/s net of the %.3f s the job takes printing nothing); %s%s\n' \
    "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$rate" "$t" "$net" "$e" "$RSS_LINE" "$MISSED"
echo "    runs: hearth ${times[*]}; printing nothing ${empty[*]}; $masked lines masked"

# (c) a 16-way matrix of one-step jobs.
cmd=("$HEARTH" exec -W "$here/exec/matrix16.yml" -C "$repo")
time_once -- "${cmd[@]}" # warm-up
times=()
for ((i = 0; i < runs; i++)); do
    time_once -- "${cmd[@]}"
    times+=("$T")
done
rss "${cmd[@]}"
t=$(printf '%s\n' "${times[@]}" | median)
verdict "$(yes_if holds "$t" "<=" 0.15)" "$(yes_if holds "$RSS" "<=" "$rss_limit")"
printf '(c) 16-way matrix: %.3f s on %d cores (target ≤ 0.15 s); %s%s\n' \
    "$t" "$(nproc)" "$RSS_LINE" "$MISSED"
echo "    runs: ${times[*]}"

exit "$status"
