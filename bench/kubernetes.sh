#!/usr/bin/env bash
# The Kubernetes backend against its floors, on the test cluster of ../shared/k8s (started;
# KUBECONFIG defaults to its admin kubeconfig), in a namespace of the benchmark's own (made
# and deleted here, with the ServiceAccount hearth-job that mounts no token, so that hearth's
# Pods and the floor's have the same shape). Medians of RUNS (default 7), the runs of hearth
# and of its floor alternating so that drift on a busy machine hits both alike.
#
#   (a) a one-step job (`hearth exec -P ubuntu-latest=kubernetes://IMAGE`, whole process)
#       against doing its Pod by hand with kubectl: `create -f pod.yaml` (the Pod hearth makes:
#       the image with imagePullPolicy IfNotPresent, a sleeping sh, two emptyDir volumes,
#       serviceAccountName hearth-job, no token), `wait --for=condition=Ready`, `exec -- true`,
#       `delete --grace-period=0 --force`: target ≤ 1.5×;
#   (b) 20 queued one-step jobs at `runner.capacity: 10`: `hearth daemon` registered with the
#       fake forge (which listens on the Pods' bridge address, as the backend refuses a forge
#       on the loopback), from the daemon's start until the forge has all 20 results, against
#       the same four kubectl commands for 20 Pods, 10 at a time (`xargs -P 10`): target ≤ 1.3×.
#
#   bench/kubernetes.sh              build the release binaries, run each case RUNS times
#   HEARTH=path bench/kubernetes.sh  measure that binary instead (FAKE_FORGE=path likewise)
#   KUBECTL=path                     the kubectl of the floor (default: the one on PATH)
#   BRIDGE=10.88.0.1                 the address of this machine that Pods reach
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
runs=${RUNS:-7}
image=hearth-test/busybox:1
bridge=${BRIDGE:-10.88.0.1}
export KUBECONFIG=${KUBECONFIG:-${K8S_HOME:-/var/cache/hearth-k8s}/run/admin.kubeconfig}
export KUBECTL=${KUBECTL:-kubectl}
token=bench-registration-token

ready=""
for _ in $(seq 1 60); do
    ready=$("$KUBECTL" get nodes -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    [[ $ready == *True* ]] && break
    sleep 2
done
if [[ $ready != *True* ]]; then
    echo "no Ready node behind $KUBECONFIG: start the cluster (../shared/k8s/cluster.sh start)" >&2
    exit 2
fi

target=${CARGO_TARGET_DIR:-$root/target}
if [[ -z ${HEARTH:-} || -z ${FAKE_FORGE:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p hearth -p hearth-fake-forge)
fi
HEARTH=${HEARTH:-$target/release/hearth}
FAKE_FORGE=${FAKE_FORGE:-$target/release/fake-forge}

work=$(mktemp -d "${TMPDIR:-/tmp}/hearth-k8s-bench.XXXXXX")
export ns=hearth-bench-$$
forge_pid=""
cleanup() {
    [[ -n $forge_pid ]] && kill "$forge_pid" 2>/dev/null
    "$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
"$KUBECTL" create namespace "$ns" >/dev/null
"$KUBECTL" -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: hearth-job}
automountServiceAccountToken: false
EOF

repo=$work/repo
mkdir "$repo"
git -C "$repo" init -q
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -q --allow-empty -m bench
cat >"$work/config.yaml" <<EOF
runner:
  capacity: 10
host:
  workdir_parent: $work/jobs
kubernetes:
  kubeconfig: $KUBECONFIG
  namespace: $ns
EOF

now() { python3 -c 'import time; print(time.perf_counter())'; }
elapsed() { python3 -c "print($2 - $1)"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

hearth_job() {
    "$HEARTH" exec -c "$work/config.yaml" -W "$here/kubernetes/step1.yml" -C "$repo" \
        -P "ubuntu-latest=kubernetes://$image" >/dev/null
}

# The Pod hearth makes for a one-step job (crates/kubernetes/src/pod.rs), less its labels.
pod_manifest() { # pod_manifest NAME > FILE
    cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  serviceAccountName: hearth-job
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  volumes:
  - {name: hearth-work, emptyDir: {}}
  - {name: hearth-toolcache, emptyDir: {}}
  containers:
  - name: job
    image: $image
    imagePullPolicy: IfNotPresent
    command: [/bin/sh, -c, "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait \$!; done"]
    securityContext: {privileged: false, allowPrivilegeEscalation: false}
    volumeMounts:
    - {name: hearth-work, mountPath: /__w}
    - {name: hearth-toolcache, mountPath: /__t}
EOF
}
floor_pod() { # floor_pod FILE: the Pod in FILE (named as the file) by hand
    local name
    name=$(basename "$1" .yaml)
    "$KUBECTL" -n "$ns" create -f "$1" >/dev/null
    "$KUBECTL" -n "$ns" wait --for=condition=Ready "pod/$name" --timeout=300s >/dev/null
    "$KUBECTL" -n "$ns" exec "$name" -- true
    # --force says on stderr that it does not wait for the kubelet.
    "$KUBECTL" -n "$ns" delete pod "$name" --grace-period=0 --force >/dev/null 2>&1
}
export -f floor_pod
floor_one() { floor_pod "$1"; }
floor_many() { # floor_many FILE...
    printf '%s\n' "$@" | xargs -P 10 -n 1 bash -c 'floor_pod "$1"' floor
}
manifests() { # manifests PREFIX COUNT: writes the files, prints their paths
    local i
    for i in $(seq 1 "$2"); do
        pod_manifest "$1-$i" >"$work/$1-$i.yaml"
        echo "$work/$1-$i.yaml"
    done
}

# (b), hearth's side: a fake forge with 20 tasks on the bridge, a runner registered with it,
# then the daemon timed from its spawn until the forge has the 20 final results.
printf 'name: bench\non: push\njobs:\n  job:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n' \
    >"$work/payload.yml"
hearth_daemon() { # hearth_daemon RUN: prints the seconds it took
    local dir=$work/daemon-$1 url=""
    mkdir "$dir"
    "$FAKE_FORGE" --host "$bridge" --token "$token" --tasks 20 --payload "$work/payload.yml" \
        >"$dir/forge.out" 2>&1 &
    forge_pid=$!
    for _ in $(seq 1 100); do
        url=$(sed -n 's/^listening on //p' "$dir/forge.out")
        [[ -n $url ]] && break
        sleep 0.05
    done
    [[ -n $url ]] || { cat "$dir/forge.out" >&2; return 1; }
    (cd "$dir" && "$HEARTH" -c "$work/config.yaml" register --no-interactive --instance "$url" \
        --token "$token" --labels "ubuntu-latest:kubernetes://$image" >/dev/null)
    python3 - "$HEARTH" "$work/config.yaml" "$dir" "$url" <<'EOF'
import json, subprocess, sys, time, urllib.request
hearth, config, folder, url = sys.argv[1:]
log = open(f"{folder}/daemon.log", "wb")
t0 = time.perf_counter()
daemon = subprocess.Popen([hearth, "-c", config, "daemon"], cwd=folder,
                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
done = 0
while time.perf_counter() - t0 < 600:
    with urllib.request.urlopen(f"{url}/_fake/stats") as answer:
        stats = json.load(answer)
    done = stats["jobs_done"]
    if done >= 20:
        break
    if daemon.poll() is not None:
        break
    time.sleep(0.02)
t1 = time.perf_counter()
daemon.terminate()
daemon.wait()
failed = [j["status"] for j in stats["jobs"] if j["status"] != "success"]
if done < 20 or failed:
    sys.exit(f"the daemon did {done} of 20 jobs ({failed or 'none'} not success); see {folder}/daemon.log")
print(t1 - t0)
EOF
    kill "$forge_pid"
    wait "$forge_pid" 2>/dev/null || true
    forge_pid=""
}

settle() { # until the namespace has no Pods left (what the previous case deleted)
    while [[ -n $("$KUBECTL" -n "$ns" get pods -o name 2>/dev/null) ]]; do sleep 0.2; done
}
measure() { # measure NAME COMMAND... : appends one wall time to $work/NAME
    local t0 t1
    settle
    t0=$(now)
    "${@:2}"
    t1=$(now)
    elapsed "$t0" "$t1" >>"$work/$1"
}

cases=${CASES:-a b}
if [[ $cases == *a* ]]; then
    [[ -z ${FLOOR_ONLY:-} ]] && hearth_job # warm: the binary's pages, the node's image
    floor_one "$(manifests warm 1)"
fi
for run in $(seq 1 "$runs"); do
    if [[ $cases == *a* ]]; then
        [[ -z ${FLOOR_ONLY:-} ]] && measure a_hearth hearth_job
        measure a_floor floor_one "$(manifests a$run 1)"
    fi
    if [[ $cases == *b* ]]; then
        if [[ -z ${FLOOR_ONLY:-} ]]; then
            settle
            hearth_daemon "$run" >>"$work/b_hearth"
        fi
        mapfile -t files < <(manifests b$run 20)
        measure b_floor floor_many "${files[@]}"
    fi
done

status=0
report() { # report LABEL CASE TARGET
    local h f r verdict=""
    f=$(median <"$work/$2_floor")
    if [[ ! -s $work/$2_hearth ]]; then
        printf '%s: floor %.3f s\n' "$1" "$f"
        return
    fi
    h=$(median <"$work/$2_hearth")
    r=$(ratio "$h" "$f")
    python3 -c "import sys; sys.exit(0 if $r <= $3 else 1)" || { verdict=" — MISSED"; status=1; }
    printf '%s: %.3f s vs floor %.3f s = %s× (target ≤ %s×)%s\n' "$1" "$h" "$f" "$r" "$3" "$verdict"
}
printf '%s; %s (%s); %d runs; load average %s\n' "$HEARTH" "$KUBECTL" \
    "$("$KUBECTL" version --client -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' 2>/dev/null || echo '?')" \
    "$runs" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
[[ $cases == *a* ]] && report "(a) one-step job as a Pod" a 1.5
[[ $cases == *b* ]] && report "(b) 20 one-step jobs at capacity 10" b 1.3
exit $status
