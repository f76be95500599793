#!/usr/bin/env python3
"""Writes capsa's link order: the functions its common commands execute, in
the order they first run. bench/hot-order.sh prepares the bundle and calls
this; see there for why and how.

Every function symbol of the symbolised binary gets a uprobe (tracefs
`uprobe_events`, a private tracing instance): a breakpoint, so a function is
seen even if it runs once, which sampling would miss. The kernel places
uprobes on the file's inode, so the forked container init and the process
`exec` starts are traced too. Each hit is an event in the instance's ring
buffer; the first event of a probe gives the function's place in the file.
Aliases (several names at one address) are all written out: lld moves the
section that holds them, whichever name it meets first.
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time

GROUP = "capsa_order"
BUFFER_KB = 262144  # per CPU; a workload makes a few million events


def tracefs():
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.exists(os.path.join(d, "uprobe_events")):
            return d
    sys.exit("hot_order: no tracefs with uprobe_events (mount tracefs)")


def exec_segments(binary):
    """(vaddr, offset, size) of the executable PT_LOAD segments."""
    out = subprocess.run(["readelf", "-lW", binary], check=True, capture_output=True,
                         text=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
    return segs


def functions(binary):
    """{file offset: [names]} of the function symbols in executable segments."""
    segs = exec_segments(binary)
    out = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True,
                         text=True).stdout
    funcs = {}
    for line in out.splitlines():
        f = line.split(maxsplit=2)
        if len(f) != 3 or f[1] not in "tTwWiI":
            continue
        addr = int(f[0], 16)
        for vaddr, off, size in segs:
            if vaddr <= addr < vaddr + size:
                funcs.setdefault(addr - vaddr + off, []).append(f[2])
    return funcs


VEX_EVEX = (0x62, 0xC4, 0xC5)


def probe_points(binary, funcs):
    """{probe offset: function offset}. A uprobe on an instruction with a VEX
    or EVEX prefix (glibc's AVX string functions start with one) corrupted
    the program here (`memset` left a hash table unfilled, which then spun
    forever); such functions get their probe on the first other instruction,
    which runs whenever the function does: nothing before it branches."""
    with open(binary, "rb") as f:
        data = f.read()
    segs = exec_segments(binary)
    points = {}
    for off in funcs:
        if data[off] not in VEX_EVEX:
            points[off] = off
            continue
        vaddr = next(v - o for v, o, size in segs if o <= off < o + size) + off
        dis = subprocess.run(["objdump", "-d", f"--start-address={vaddr:#x}",
                              f"--stop-address={vaddr + 48:#x}", binary], check=True,
                             capture_output=True, text=True).stdout
        for line in dis.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(\S+)", line)
            if not m:
                continue
            at, first, mnem = int(m.group(1), 16), int(m.group(2)[:2], 16), m.group(3)
            if mnem.startswith(("j", "ret", "call")):
                break
            if first not in VEX_EVEX:
                points[at - vaddr + off] = off
                break
        else:
            print(f"hot_order: no probe point in {funcs[off][0]}", file=sys.stderr)
    return points


class Probes:
    """The uprobe events of GROUP and a tracing instance that records them."""

    def __init__(self, tfs, binary, points):
        """points: {probe offset: function offset}"""
        self.tfs, self.inst = tfs, os.path.join(tfs, "instances", GROUP)
        self.names = {}
        for i, (at, off) in enumerate(sorted(points.items())):
            self.names[f"f{i}"] = off
            self.define(f"p:{GROUP}/f{i} {binary}:0x{at:x}")
        os.makedirs(self.inst, exist_ok=True)
        self.write("buffer_size_kb", str(BUFFER_KB))
        self.write("options/overwrite", "0")  # keep the first events, count drops
        self.write("trace", "")
        self.write(f"events/{GROUP}/enable", "1")

    def write(self, rel, value):
        with open(os.path.join(self.inst, rel), "w") as f:
            f.write(value)

    def mark(self, text):
        self.write("trace_marker", f"phase {text}")

    def first_hits(self):
        """Event names in the order of their first hit, and drops."""
        self.write("tracing_on", "0")
        order, seen = [], set()
        pat = re.compile(r" (f\d+): \(")  # `comm-pid [cpu] flags time: f12: (0x...)`
        with open(os.path.join(self.inst, "trace")) as f:
            for line in f:
                m = pat.search(line)
                if m and m.group(1) not in seen:
                    seen.add(m.group(1))
                    order.append(m.group(1))
        dropped = 0
        for cpu in os.listdir(os.path.join(self.inst, "per_cpu")):
            with open(os.path.join(self.inst, "per_cpu", cpu, "stats")) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("overrun", "dropped events"):
                        dropped += int(v.split()[0])
        return order, dropped

    def remove(self):
        try:
            self.write(f"events/{GROUP}/enable", "0")
        except OSError:
            pass
        os.rmdir(self.inst)
        for ev in self.names:
            self.define(f"-:{GROUP}/{ev}")

    def define(self, line):
        """One command per write: the kernel parses whole lines of one write.
        O_APPEND: opening uprobe_events for writing without it clears every
        uprobe on the machine, other people's included."""
        fd = os.open(os.path.join(self.tfs, "uprobe_events"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def run(argv, work, ok=True):
    """Output goes to a file, not a pipe: a created container's init keeps
    capsa's stdout and stderr until it execs, so a pipe would not end."""
    with open(os.path.join(work, "out"), "w+") as out:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=120)
        out.seek(0)
        if ok and r.returncode != 0:
            sys.exit(f"hot_order: {' '.join(argv)} failed: {out.read().strip()}")


def wait_gone(pid):
    for _ in range(500):
        if not os.path.exists(f"/proc/{pid}"):
            return
        time.sleep(0.01)
    sys.exit(f"hot_order: the init {pid} outlived `kill KILL` by 5 s")


def workload(probes, capsa, work, tag):
    """The commands in the order that matters most: what a create + start +
    delete (containerd, podman, the bench) runs first, then exec, run, the
    queries, then the rarer commands."""
    root = os.path.join(work, f"state-{tag}")
    c = [capsa, "--root", root]
    b_true, b_sleep = os.path.join(work, "bundle-true"), os.path.join(work, "bundle-sleep")
    pid = os.path.join(work, "pid")
    res = os.path.join(work, "resources.json")
    with open(res, "w") as f:
        json.dump({"memory": {"limit": 256 << 20}, "pids": {"limit": 1000}}, f)
    log = [f"--log={work}/log.json", "--log-format=json"]
    s, t = f"order-{tag}-s", f"order-{tag}-t"
    steps = [
        ("create", c + ["create", "--bundle", b_sleep, "--pid-file", pid, s]),
        ("state", c + ["state", s]),
        ("start", c + ["start", s]),
        ("exec", c + ["exec", s, "/bin/true"]),
        ("exec -d", c + ["exec", "-d", "--pid-file", pid + "-exec", s, "/bin/sleep", "0"]),
        ("events", c + ["events", "--stats", s]),
        ("update", c + ["update", "--resources", res, s]),
        ("ps", c + ["ps", "--format", "json", s]),
        ("list", c + ["list"]),
        ("pause", c + ["pause", s]),
        ("resume", c + ["resume", s]),
        ("kill", c + ["kill", s, "KILL"]),
        ("delete", c + ["delete", s]),
        ("run", c + ["run", "--bundle", b_true, t]),
        ("create --log", c + log + ["create", "--bundle", b_sleep, t]),
        ("delete -f", c + log + ["delete", "-f", t]),
        ("spec", [capsa, "spec", "--bundle", root]),
        ("features", [capsa, "features"]),
        ("version", [capsa, "--version"]),
    ]
    for name, argv in steps:
        probes.mark(f"{tag} {name}")
        if name == "delete":  # `kill` returns before the init is gone
            wait_gone(int(open(pid).read()))
        run(argv, work, ok=name != "exec -d")
        if name == "delete":
            run(c + ["state", s], work, ok=False)  # the not-found error path, as hooks meet it


def private_cgroup_v1():
    """Enters a mount namespace without the cgroup2 mounts, as the bench's
    plain `capsa` runtime does: there capsa takes its cgroup v1 paths."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        sys.exit(f"hot_order: unshare: {os.strerror(ctypes.get_errno())}")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    with open("/proc/self/mountinfo") as f:
        mounts = [ln.split(" - ")[0].split()[4] for ln in f
                  if ln.split(" - ")[1].split()[0] == "cgroup2"]
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", m.replace("\\040", " ")], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True, help="capsa with its symbol table")
    ap.add_argument("--work", required=True, help="holds bundle-true, bundle-sleep")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    binary = os.path.realpath(a.binary)
    funcs = functions(binary)
    probes = Probes(tracefs(), binary, probe_points(binary, funcs))
    try:
        workload(probes, binary, a.work, "hybrid")
        private_cgroup_v1()
        workload(probes, binary, a.work, "v1")
        order, dropped = probes.first_hits()
    finally:
        for tag in ("hybrid", "v1"):  # after a failure: nothing of ours stays
            for cid in (f"order-{tag}-s", f"order-{tag}-t"):
                subprocess.run([binary, "--root", os.path.join(a.work, f"state-{tag}"),
                                "delete", "-f", cid], capture_output=True)
        probes.remove()
    if dropped:
        sys.exit(f"hot_order: {dropped} events dropped: raise BUFFER_KB")
    with open(a.out, "w") as f:
        for ev in order:
            for name in funcs[probes.names[ev]]:
                f.write(name + "\n")
    print(f"hot_order: {len(order)} of {len(funcs)} functions ran; wrote {a.out}")


if __name__ == "__main__":
    main()
