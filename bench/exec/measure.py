#!/usr/bin/env python3
"""Measuring helpers for bench/exec.sh (run one thing once; bash collects and compares).

  measure.py gen DIR
      Writes DIR/lines.txt (200,000 lines of ~80 characters, one in twenty holding a secret:
      raw, base64 of `user:secret`, or quoted) and DIR/secrets (50 NAME='value' entries for
      --secret-file) and DIR/secret-values (one value a line, for checking the output).
      The same data on every run (xorshift64, as crates/engine/benches/mask.rs).

  measure.py floor COUNT
      Runs `bash --noprofile --norc -eo pipefail -c true` COUNT times, one after the other,
      with subprocess.run (vfork + exec, as Python does it); prints the seconds they took
      (timed inside this process, so Python's own start-up is not counted).

  measure.py run [--out FILE] -- COMMAND...
      Runs COMMAND once, stdin from /dev/null, stdout to /dev/null (or FILE), stderr to
      /dev/null; prints the seconds it took. Exits 1 if COMMAND failed.

  measure.py rss -- COMMAND...
      Runs COMMAND once as `run` does, under `/usr/bin/time -f %M`, and prints `HWM_KB MAXRSS_KB`:
      COMMAND's own peak RSS (VmHWM, read from /proc every 2 ms while it runs; the high-water
      mark only grows, so the last reading is the peak but for the last 2 ms) and what
      /usr/bin/time reports (wait4's ru_maxrss: the largest peak of COMMAND and the children it
      waited for; 0 when /usr/bin/time is missing). Python cannot report ru_maxrss itself: a
      child's counts the RSS its parent had when it forked, here Python's ~14 MB.
"""

import base64
import os
import subprocess
import sys
import tempfile
import time

LINES = 200_000
SECRETS = 50
FLOOR_ARGV = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "true"]


class Rng:
    """xorshift64, as the Rust benches use."""

    def __init__(self, seed=0x9E3779B97F4A7C15):
        self.state = seed

    def next(self):
        s = self.state
        s ^= (s << 13) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 7
        s ^= (s << 17) & 0xFFFFFFFFFFFFFFFF
        self.state = s
        return s

    def below(self, n):
        return self.next() % n


def gen(folder):
    rng = Rng()
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    secrets = []
    for i in range(SECRETS):
        length = 16 + rng.below(25)
        value = "".join(alnum[rng.below(len(alnum))] for _ in range(length))
        if i % 5 == 0:
            value += '/+="&'
        secrets.append(value)
    words = "abcdefghijklmnopqrstuvwxyz      ....,,::==--0123456789ABCDEFGHIJ[]()/"
    # Random filler, cut from one long random string: fast enough for 200,000 lines.
    pool = "".join(words[rng.below(len(words))] for _ in range(1 << 16))
    out = []
    for i in range(LINES):
        head = ""
        if i % 20 == 0:
            secret = secrets[rng.below(SECRETS)]
            form = rng.below(3)
            if form == 0:
                head = f"token: {secret} "
            elif form == 1:
                head = "token: " + base64.b64encode(f"user:{secret}".encode()).decode() + " "
            else:
                head = f'token: "{secret}" '
        length = 70 + rng.below(20)
        start = rng.below(len(pool) - 100)
        out.append(head + pool[start : start + max(length - len(head), 10)] + "\n")
    text = "".join(out)
    with open(os.path.join(folder, "lines.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(folder, "secrets"), "w") as f:
        for i, value in enumerate(secrets):
            f.write(f"SECRET_{i:02}='{value}'\n")
    with open(os.path.join(folder, "secret-values"), "w") as f:
        f.write("".join(v + "\n" for v in secrets))
    print(len(text.encode()))


def floor(count):
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(FLOOR_ARGV, check=True)
    print(f"{time.perf_counter() - start:.4f}")


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def spawn(argv, out=None):
    stdout = open(out, "wb") if out else subprocess.DEVNULL
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL
    )


def finish(child, argv):
    if child.returncode != 0:
        print(f"measure.py: {' '.join(argv)} exited with {child.returncode}", file=sys.stderr)
        sys.exit(1)


def run(argv, out):
    start = time.perf_counter()
    child = spawn(argv, out)
    child.wait()
    elapsed = time.perf_counter() - start
    print(f"{elapsed:.4f}")
    finish(child, argv)


def rss(argv):
    timer = "/usr/bin/time"
    if not os.access(timer, os.X_OK):
        child = spawn(argv)
        pid, report = child.pid, None
    else:
        report = tempfile.NamedTemporaryFile(prefix="rss", delete=False).name
        child = spawn([timer, "-f", "%M", "-o", report] + argv)
        pid = None
    hwm = 0
    while child.poll() is None:
        if pid is None:
            try:
                with open(f"/proc/{child.pid}/task/{child.pid}/children") as f:
                    pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        if pid is not None:
            hwm = max(hwm, vm_hwm(pid))
        time.sleep(0.002)
    maxrss = 0
    if report:
        with open(report) as f:
            lines = f.read().split()
        os.unlink(report)
        maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    print(f"{hwm} {maxrss}")
    finish(child, argv)


def main(args):
    if args[:1] == ["gen"] and len(args) == 2:
        gen(args[1])
    elif args[:1] == ["floor"] and len(args) == 2:
        floor(int(args[1]))
    elif args[:1] == ["run"] and "--" in args:
        options, argv = args[1 : args.index("--")], args[args.index("--") + 1 :]
        out = options[options.index("--out") + 1] if "--out" in options else None
        run(argv, out)
    elif args[:2] == ["rss", "--"] and len(args) > 2:
        rss(args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
