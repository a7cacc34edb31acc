#!/usr/bin/env bash
# The cache server (issue 16) against the disk it stores on, over HTTP on the loopback, as the
# toolkit drives it (protocol v1: parts of 32 MiB, four at a time; downloads whole):
#   save     a 1 GiB entry, reserve to commit (the commit syncs it), against `dd` writing the
#            same bytes with fdatasync: target ≥ 70 % of the disk's speed;
#   restore  the entry downloaded into a file, synced, against `dd` copying the blob with
#            fdatasync: target ≥ 70 %;
#   fan-out  100 parallel downloads of a 10 MiB entry against one: target ≤ 2× the time.
# Prints each figure and ratio. The server is `hearth cache-server` (release build).
#
#   bench/cache.sh              build the release binary, then measure
#   HEARTH=path bench/cache.sh  measure that binary instead
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
if [[ -z ${HEARTH:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth)
    HEARTH=${CARGO_TARGET_DIR:-$root/target}/release/hearth
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/hearth-cache-bench.XXXXXX")
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

secret="bench key, long enough for the server"
printf '%s' "$secret" >"$work/secret"
"$HEARTH" cache-server -d "$work/store" -p 0 --secret-file "$work/secret" >"$work/server.out" &
server=$!
for _ in $(seq 50); do
    grep -q http "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
address=$(grep -o 'http://[^ ]*' "$work/server.out")
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
api="$address/$token/_apis/artifactcache"

now() { date +%s.%N; }
seconds() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# save KEY FILE: reserve, the parts (32 MiB, four at a time), commit; prints the entry's id.
save() {
    local key=$1 file=$2 size id
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
    echo "$id"
}

# link KEY: the entry's download link.
link() {
    curl -sf "$api/cache?keys=$1&version=v" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["archiveLocation"])'
}

mib=1024
head -c $((mib << 20)) /dev/urandom >"$work/source"

start=$(now)
dd if="$work/source" of="$work/disk-write" bs=32M conv=fdatasync status=none
disk_write=$(seconds "$start" "$(now)")
rm -f "$work/disk-write"

start=$(now)
save big "$work/source" >/dev/null
save_time=$(seconds "$start" "$(now)")

blob=$(ls "$work"/store/entries/*.blob)
start=$(now)
dd if="$blob" of="$work/disk-copy" bs=32M conv=fdatasync status=none
disk_copy=$(seconds "$start" "$(now)")
rm -f "$work/disk-copy"

url=$(link big)
start=$(now)
curl -sf -o "$work/restored" "$url"
sync -f "$work/restored" 2>/dev/null || sync
restore_time=$(seconds "$start" "$(now)")
cmp -s "$work/source" "$work/restored" || { echo "the restored entry differs" >&2; exit 1; }
rm -f "$work/restored" "$work/source"

head -c $((10 << 20)) /dev/urandom >"$work/small"
save small "$work/small" >/dev/null
small=$(link small)
curl -sf -o /dev/null "$small" # warm
runs=${RUNS:-5}
one=()
many=()
for _ in $(seq "$runs"); do
    start=$(now)
    curl -sf -o /dev/null "$small"
    one+=("$(seconds "$start" "$(now)")")
    start=$(now)
    seq 100 | xargs -P 100 -I{} curl -sf -o /dev/null "$small"
    many+=("$(seconds "$start" "$(now)")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
one_median=$(median "${one[@]}")
many_median=$(median "${many[@]}")

python3 - "$mib" "$disk_write" "$save_time" "$disk_copy" "$restore_time" "$one_median" "$many_median" <<'PY'
import sys
mib, disk_write, save, disk_copy, restore, one, many = (float(x) for x in sys.argv[1:])
print(f"save     {mib:.0f} MiB in {save:.2f} s = {mib/save:.0f} MiB/s; dd write with fdatasync "
      f"{mib/disk_write:.0f} MiB/s; ratio {disk_write/save:.2f} (target >= 0.70)")
print(f"restore  {mib:.0f} MiB in {restore:.2f} s = {mib/restore:.0f} MiB/s; dd copy with fdatasync "
      f"{mib/disk_copy:.0f} MiB/s; ratio {disk_copy/restore:.2f} (target >= 0.70)")
print(f"fan-out  one 10 MiB download {one*1000:.0f} ms; 100 in parallel {many*1000:.0f} ms; "
      f"{many/one:.1f}x (target <= 2x)")
PY
