#!/usr/bin/env bash
# The cache's two stores side by side (issue 16): `hearth cache-server` on this machine's disk
# and on a bucket of an S3-compatible server (moto's, from scripts/s3-test-env, on the
# loopback), each saving and restoring a 100 MiB entry as the toolkit drives protocol v1 (parts
# of 32 MiB, four at a time; the download whole). Medians of RUNS (3) runs, each a new key.
# moto keeps objects in memory and is written in Python: the S3 figures say what the server's
# S3 path costs against a slow store, not what MinIO or AWS would give.
#
#   bench/cache-s3.sh              build the release binary, then measure
#   HEARTH=path bench/cache-s3.sh  measure that binary instead
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
if [[ -z ${HEARTH:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth)
    HEARTH=${CARGO_TARGET_DIR:-$root/target}/release/hearth
fi
moto=$("$root/scripts/s3-test-env" | tail -1)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/hearth-cache-s3-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done
curl -sf -X PUT -o /dev/null "http://127.0.0.1:$port/bench"

secret="bench key, long enough for the server"
printf '%s' "$secret" >"$work/secret"
# start NAME ARGS...: a server; prints its address.
start() {
    local name=$1
    shift
    "$HEARTH" cache-server -d "$work/$name" -p 0 --secret-file "$work/secret" "$@" \
        >"$work/$name.out" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q http "$work/$name.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -o 'http://[^ ]*' "$work/$name.out"
}
disk=$(start disk)
s3=$(AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench start s3 \
    --s3-bucket bench --s3-endpoint "http://127.0.0.1:$port" --s3-path-style --s3-prefix cache)

token=$(SECRET=$secret python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
claims = json.dumps({"repository": "bench/app", "read": ["refs/heads/main"],
                     "write": "refs/heads/main", "expires": int(time.time()) + 3600},
                    separators=(",", ":")).encode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
c = b64(claims)
print(c + "." + b64(hmac.new(os.environ["SECRET"].encode(), c.encode(), hashlib.sha256).digest()))
PY
)

now() { date +%s.%N; }
seconds() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# save API KEY FILE: reserve, the parts (32 MiB, four at a time), commit.
save() {
    local api=$1 key=$2 file=$3 size id
    size=$(stat -c %s "$file")
    id=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"key\":\"$key\",\"version\":\"v\",\"cacheSize\":$size}" "$api/caches" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["cacheId"])')
    local part=$((32 << 20))
    seq 0 $(((size - 1) / part)) | xargs -P 4 -I{} sh -c '
        start=$(({} * '$part')); end=$((start + '$part' - 1)); [ $end -ge '$size' ] && end=$(('$size' - 1))
        dd if='"$file"' bs=1M skip=$((start >> 20)) count=32 status=none |
            curl -sf -X PATCH -H "Content-Type: application/octet-stream" \
                -H "Content-Range: bytes $start-$end/*" --data-binary @- '"$api/caches/$id"
    curl -sf -X POST -H 'Content-Type: application/json' -d "{\"size\":$size}" "$api/caches/$id"
}

# restore API KEY OUT: the lookup, then the download.
restore() {
    local url
    url=$(curl -sf "$1/cache?keys=$2&version=v" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["archiveLocation"])')
    curl -sf -o "$3" "$url"
}

mib=100
head -c $((mib << 20)) /dev/urandom >"$work/source"
runs=${RUNS:-3}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for store in disk s3; do
    address=${!store}
    api="$address/$token/_apis/artifactcache"
    saves=()
    restores=()
    for run in $(seq "$runs"); do
        begin=$(now)
        save "$api" "big-$run" "$work/source"
        saves+=("$(seconds "$begin" "$(now)")")
        begin=$(now)
        restore "$api" "big-$run" "$work/restored"
        restores+=("$(seconds "$begin" "$(now)")")
        cmp -s "$work/source" "$work/restored" || { echo "$store: the restored entry differs" >&2; exit 1; }
        rm -f "$work/restored"
    done
    python3 - "$store" "$mib" "$(median "${saves[@]}")" "$(median "${restores[@]}")" <<'PY'
import sys
store, mib, save, restore = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"{store:5} save {mib:.0f} MiB in {save:.2f} s ({mib/save:.0f} MiB/s), "
      f"restore in {restore:.2f} s ({mib/restore:.0f} MiB/s)")
PY
done
