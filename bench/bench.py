#!/usr/bin/env python3
"""The measuring half of `./bench/run.sh` (docs/performance.md).

Standard library only. Runs as root, single-threaded (setns into a mount
namespace needs that). It:

* makes a private mount namespace with every cgroup2 mount detached, so that
  runtimes run there see plain cgroup v1 (crun 1.8.1 refuses the hybrid
  host), and keeps a handle on the host's mount namespace, switching between
  the two with setns(2) before each command;
* becomes a child subreaper, so every container init is reparented to it:
  it waits for a container to stop with wait4(2) instead of polling, and gets
  the init's rusage for free;
* runs every runtime round-robin, N iterations, timing each command from
  posix_spawn to wait4 (stdin/stdout on /dev/null, stderr to a log);
* writes results.json, results.md and chart.svg, and prints the tables.
"""

import argparse
import ctypes
import datetime
import fcntl
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_CHILD_SUBREAPER = 36

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
LIBC.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

# The pause before each `run_idle` sample: long enough for the kernel's
# cgroup migration lock to go cold (an RCU grace period is milliseconds).
IDLE_SECONDS = 0.25
IDLE_SAMPLES = 5

# (key, label, unit); the order of the tables and of the chart.
METRICS = [
    ("run", "run /bin/true", "ms"),
    ("run_warm", "run /bin/true, cgroup lock warm", "ms"),
    ("run_idle", f"run /bin/true after {IDLE_SECONDS} s idle", "ms"),
    ("create", "create", "ms"),
    ("start", "start", "ms"),
    ("state", "state", "ms"),
    ("exec", "exec /bin/true", "ms"),
    ("events", "events --stats", "ms"),
    ("update", "update --resources", "ms"),
    ("delete", "delete (stopped)", "ms"),
    ("par20", "20 lifecycles in parallel", "ms"),
    ("par100", "100 lifecycles in parallel", "ms"),
    ("rss_create", "peak RSS: create", "KiB"),
    ("rss_init", "peak RSS: container init", "KiB"),
    ("rss_exec", "peak RSS: exec", "KiB"),
    ("size", "binary size", "KiB"),
]
FLOOR_METRICS = [
    ("floor_spawn", "the harness alone: spawn + wait of a static true", "ms"),
    ("floor", "unshare -pnmiuC --fork /bin/true", "ms"),
    ("floor_root", "same + --root=rootfs", "ms"),
    ("rss_floor", "peak RSS that GNU time reports for a static busybox true", "KiB"),
]
BASELINE = "crun"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Timeout(Exception):
    pass


def on_alarm(_sig, _frame):
    raise Timeout()


def arm(seconds):
    signal.setitimer(signal.ITIMER_REAL, seconds)


class Namespaces:
    """The host's mount namespace and a private one without cgroup2."""

    def __init__(self):
        self.fds = {"host": os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)}
        check(LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        check(LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / rprivate")
        self.detached = []
        # Deepest first, so nested cgroup2 mounts go before their parents.
        for mnt in sorted(cgroup2_mounts(), key=len, reverse=True):
            check(LIBC.umount2(mnt.encode(), MNT_DETACH), f"umount {mnt}")
            self.detached.append(mnt)
        self.fds["private"] = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        self.current = "private"
        os.chdir("/")

    def enter(self, name):
        if name != self.current:
            check(LIBC.setns(self.fds[name], CLONE_NEWNS), f"setns({name})")
            self.current = name
            os.chdir("/")


def cgroup2_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                out.append(left.split()[4].replace("\\040", " "))
    return out


class Runtime:
    def __init__(self, name, exe, ns, root, extra=(), diag=False, argv0=None):
        self.name, self.exe, self.ns, self.root = name, exe, ns, root
        self.extra = list(extra)
        self.diag = diag
        self.argv0 = argv0 or exe
        self.notes = []
        self.failures = {}
        self.unsupported = set()
        self.errlog = None

    def cmd(self, *args):
        return [self.argv0, "--root", self.root, *self.extra, *args]


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = a.work
        self.ns = Namespaces()
        check(LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER")
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self.samples = {}  # metric -> runtime -> [values]
        self.notes = []
        self.strays = 0
        signal.signal(signal.SIGALRM, on_alarm)

    # -- processes ---------------------------------------------------------
    def spawn(self, rt, argv, exe=None):
        fa = [
            (os.POSIX_SPAWN_DUP2, self.devnull, 0),
            (os.POSIX_SPAWN_DUP2, self.devnull, 1),
            (os.POSIX_SPAWN_DUP2, rt.errlog, 2),
        ]
        return os.posix_spawn(exe or rt.exe, argv, ENV, file_actions=fa)

    def timed(self, rt, argv, exe=None):
        """Wall time (ms), exit status, and ru_maxrss (KiB) of one command.

        A command that hangs (youki 0.7's foreground `run` sometimes misses
        its SIGCHLD and waits forever) is killed after --command-timeout
        seconds and counts as a failure (exit status 124)."""
        t0 = time.perf_counter_ns()
        pid = self.spawn(rt, argv, exe)
        arm(self.a.command_timeout)
        try:
            _, status, ru = os.wait4(pid, 0)
        except Timeout:
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
            os.write(rt.errlog, f"\n[bench] killed after {self.a.command_timeout} s: "
                     f"{' '.join(argv)}\n".encode())
            return (time.perf_counter_ns() - t0) / 1e6, 124, 0
        finally:
            arm(0)
        t1 = time.perf_counter_ns()
        return (t1 - t0) / 1e6, os.waitstatus_to_exitcode(status), ru.ru_maxrss

    def must(self, rt, argv, what):
        ms, rc, rss = self.timed(rt, argv)
        if rc != 0:
            raise RuntimeError(f"{rt.name}: {what} exited {rc}: {self.err_tail(rt)}")
        return ms, rss

    def err_tail(self, rt):
        os.lseek(rt.errlog, 0, os.SEEK_SET)
        data = b""
        while chunk := os.read(rt.errlog, 1 << 16):
            data = (data + chunk)[-600:]
        os.lseek(rt.errlog, 0, os.SEEK_END)
        return data.decode(errors="replace").strip().replace("\n", " | ")[-400:]

    def reap_strays(self):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.strays += 1

    def wait_init(self, pid):
        """Waits for a container init reparented to us; its ru_maxrss."""
        try:
            _, _, ru = os.wait4(pid, 0)
            return ru.ru_maxrss
        except ChildProcessError:
            # Not our child (a runtime that keeps its init parented
            # elsewhere): poll its pidfd; no rusage then.
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                return None
            import select
            p = select.poll()
            p.register(fd, select.POLLIN)
            p.poll()
            os.close(fd)
            return None

    def add(self, metric, rt, value):
        if value is not None:
            self.samples.setdefault(metric, {}).setdefault(rt.name, []).append(value)

    def fail(self, rt, metric, err):
        rt.failures[metric] = rt.failures.get(metric, 0) + 1
        if rt.failures[metric] <= 2:
            log(f"  ! {rt.name} {metric}: {err}")

    # -- setup -------------------------------------------------------------
    def make_bundles(self):
        with open(self.a.spec_template) as f:
            tmpl = json.load(f)
        rootfs = os.path.join(self.work, "rootfs")
        self.rootfs = rootfs
        self.bundles = {}
        for name, args in (("true", ["/bin/true"]), ("sleep", ["/bin/sleep", "1000"])):
            c = json.loads(json.dumps(tmpl))
            # crun 1.8.1 refuses ociVersion 1.2.0 ("unknown version
            # specified"); 1.1.0 is understood by all four runtimes.
            c["ociVersion"] = "1.1.0"
            c["process"]["terminal"] = False
            c["process"]["args"] = args
            c["root"]["path"] = rootfs
            d = os.path.join(self.work, f"bundle-{name}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(c, f, indent=2)
            self.bundles[name] = d

    def setup_runtimes(self):
        rts = []
        for spec in self.a.runtime:
            name, _, exe = spec.partition("=")
            ns = "private"
            if name.endswith("-hybrid"):
                ns = "host"
            rts.append(Runtime(name, exe, ns, os.path.join(self.work, "root-" + name)))
        if self.a.diag:
            capsa = next((r for r in rts if r.name == "capsa"), None)
            if capsa:
                # capsa skips its sealed re-exec when it already runs from a
                # sealed file: execute it from a memfd the harness sealed once.
                mfd = os.memfd_create("capsa", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
                with open(capsa.exe, "rb") as src:
                    os.write(mfd, src.read())
                fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                            | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
                self.memfd = mfd
                path = f"/proc/{os.getpid()}/fd/{mfd}"
                r = Runtime("capsa-presealed", path, "private",
                            os.path.join(self.work, "root-capsa-presealed"), diag=True)
                r.size_of = capsa.exe
                r.notes.append("diagnostic: the same capsa binary run from a memfd the harness "
                               "sealed once, so capsa skips its own copy + re-exec")
                rts.append(r)
        for r in rts:
            os.makedirs(r.root, exist_ok=True)
            r.errlog = os.open(os.path.join(self.work, f"stderr-{r.name}.log"),
                               os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.runtimes = rts

    def crun_cgroup_check(self):
        rt = next((r for r in self.runtimes if r.name == "crun"), None)
        if rt is None:
            return
        self.ns.enter(rt.ns)
        pf = os.path.join(self.work, "pid-check")
        ms, rc, _ = self.timed(rt, rt.cmd("create", "--bundle", self.bundles["true"],
                                          "--pid-file", pf, "cgcheck"))
        if rc == 0:
            pid = int(open(pf).read())
            cg = open(f"/proc/{pid}/cgroup").read()
            subprocess.run(rt.cmd("delete", "-f", "cgcheck"), env=ENV, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.wait_init(pid)
            mem = [l for l in cg.splitlines() if ":memory:" in l]
            if mem and mem[0].split(":", 2)[2] not in ("/", ""):
                rt.notes.append(f"cgroupfs manager, plain cgroup v1 (memory cgroup "
                                f"{mem[0].split(':', 2)[2]})")
                return
            why = f"its init stayed in the root cgroup ({mem})"
        else:
            why = self.err_tail(rt)
        rt.extra = ["--cgroup-manager=disabled"]
        msg = (f"crun refused cgroups in the private namespace ({why}); "
               "it runs with --cgroup-manager=disabled (no cgroups at all)")
        rt.notes.append(msg)
        self.notes.append(msg)
        log("  ! " + msg)

    def warm_up(self):
        ok = []
        for rt in self.runtimes:
            self.ns.enter(rt.ns)
            try:
                for _ in range(2):
                    self.must(rt, rt.cmd("run", "--bundle", self.bundles["true"], "warm"), "run")
                rt.version = version_of(rt)
                ok.append(rt)
            except Exception as e:  # noqa: BLE001 - reported, runtime dropped
                msg = f"{rt.name} left out: it cannot run the bundle here: {e}"
                self.notes.append(msg)
                log("  ! " + msg)
        self.runtimes = ok
        for rt in self.runtimes:
            self.ns.enter(rt.ns)
            self.start_sleeper(rt)
            self.probe_sleeper_queries(rt)

    def start_sleeper(self, rt):
        pf = os.path.join(self.work, f"pid-sleeper-{rt.name}")
        self.must(rt, rt.cmd("create", "--bundle", self.bundles["sleep"], "--pid-file", pf,
                             "sleeper"), "create sleeper")
        self.must(rt, rt.cmd("start", "sleeper"), "start sleeper")
        rt.sleeper_pid = int(open(pf).read())

    # -- the kernel's cgroup migration lock -------------------------------
    # Moving another process into a cgroup (`cgroup.procs` <- pid) takes a
    # global kernel lock whose first writer after a quiet spell waits for an
    # RCU grace period (milliseconds); writers within that period do not.
    # So a runtime that migrates pays it or not depending on what ran just
    # before it, its own earlier steps included, and in a round-robin one
    # runtime's migrations warm the lock for the next. `run_warm` takes
    # that out: the harness migrates a parked process itself right before
    # the command, so every runtime finds the lock warm. `run_idle` shows
    # the other end: each run after a pause.
    def start_lock_warmer(self):
        self.warm_dirs = None
        for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
            if os.path.exists(os.path.join(base, "cgroup.procs")):
                break
        else:
            self.notes.append("run_warm not measured: no cgroup hierarchy to migrate in")
            return
        dirs = [os.path.join(base, f"capsa-bench-warm-{x}") for x in "ab"]
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        bb = os.path.join(self.rootfs, "bin", "busybox")
        self.parked = subprocess.Popen([bb, "sleep", "100000"], stdin=subprocess.DEVNULL)
        self.warm_dirs, self.warm_flip = dirs, 0

    def warm_cgroup_lock(self):
        self.warm_flip ^= 1
        with open(os.path.join(self.warm_dirs[self.warm_flip], "cgroup.procs"), "w") as f:
            f.write(str(self.parked.pid))

    def stop_lock_warmer(self):
        if getattr(self, "warm_dirs", None):
            self.parked.kill()
            self.parked.wait()
            for d in self.warm_dirs:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            self.warm_dirs = None

    # -- measurements -------------------------------------------------------
    def one_lifecycle(self, rt, i):
        b = self.bundles["true"]
        ms, rc, _ = self.timed(rt, rt.cmd("run", "--bundle", b, f"run{i}"))
        self.add("run", rt, ms) if rc == 0 else self.fail(rt, "run", self.err_tail(rt))
        if self.warm_dirs:
            self.warm_cgroup_lock()
            ms, rc, _ = self.timed(rt, rt.cmd("run", "--bundle", b, f"runw{i}"))
            self.add("run_warm", rt, ms) if rc == 0 else self.fail(rt, "run_warm",
                                                                    self.err_tail(rt))
        cid = f"c{i}"
        pf = os.path.join(self.work, f"pid-{rt.name}")
        ms, rc, _ = self.timed(rt, rt.cmd("create", "--bundle", b, "--pid-file", pf, cid))
        if rc != 0:
            self.fail(rt, "create", self.err_tail(rt))
            self.timed(rt, rt.cmd("delete", "-f", cid))
            return
        self.add("create", rt, ms)
        pid = int(open(pf).read())
        ms, rc, _ = self.timed(rt, rt.cmd("state", cid))
        self.add("state", rt, ms) if rc == 0 else self.fail(rt, "state", self.err_tail(rt))
        ms, rc, _ = self.timed(rt, rt.cmd("start", cid))
        if rc != 0:
            self.fail(rt, "start", self.err_tail(rt))
            self.timed(rt, rt.cmd("delete", "-f", cid))
            return
        self.add("start", rt, ms)
        self.add("rss_init", rt, self.wait_init(pid))
        ms, rc, _ = self.timed(rt, rt.cmd("delete", cid))
        self.add("delete", rt, ms) if rc == 0 else self.fail(rt, "delete", self.err_tail(rt))
        ms, rc, _ = self.timed(rt, rt.cmd("exec", "sleeper", "/bin/true"))
        self.add("exec", rt, ms) if rc == 0 else self.fail(rt, "exec", self.err_tail(rt))
        for metric, argv in self.sleeper_queries(i):
            if metric in rt.unsupported:
                continue
            ms, rc, _ = self.timed(rt, rt.cmd(*argv))
            self.add(metric, rt, ms) if rc == 0 else self.fail(rt, metric, self.err_tail(rt))
        # Peak RSS, in separate untimed runs under GNU time: ru_maxrss of a
        # child that posix_spawn made counts the harness's own (shared, vfork)
        # memory, while GNU time forks from its own small image.
        self.add("rss_create", rt, self.gnu_time_rss(
            rt, rt.cmd("create", "--bundle", b, "--pid-file", pf, f"m{i}"), "rss_create"))
        try:
            pid = int(open(pf).read())
            os.unlink(pf)
            self.timed(rt, rt.cmd("delete", "-f", f"m{i}"))
            self.wait_init(pid)
        except FileNotFoundError:
            pass
        self.add("rss_exec", rt, self.gnu_time_rss(
            rt, rt.cmd("exec", "sleeper", "/bin/true"), "rss_exec"))
        self.reap_strays()

    def sleeper_queries(self, i):
        """The cgroup commands timed on the running sleeper: one JSON object
        of statistics, and `update --resources FILE` (containerd's form; the
        one spelling all four runtimes share) writing a memory and a pids
        limit, alternating between two files so that every update changes
        them."""
        res = os.path.join(self.work, f"resources-{i % 2}.json")
        if not os.path.exists(res):
            with open(res, "w") as f:
                json.dump({"memory": {"limit": (256 + i % 2) << 20},
                           "pids": {"limit": 1000 + i % 2}}, f)
        return (("events", ("events", "--stats", "sleeper")),
                ("update", ("update", "--resources", res, "sleeper")))

    def probe_sleeper_queries(self, rt):
        """Leaves out, with a note, the commands a runtime does not have
        (crun has no `events`), rather than counting them as failures."""
        for metric, argv in self.sleeper_queries(0):
            _, rc, _ = self.timed(rt, rt.cmd(*argv))
            if rc != 0:
                rt.unsupported.add(metric)
                msg = (f"{' '.join(argv[:2])} not measured: it fails here "
                       f"({self.err_tail(rt).split(' | ')[-1]})")
                rt.notes.append(msg)
                log(f"  ! {rt.name}: {msg}")

    def gnu_time_rss(self, rt, argv, metric):
        """Max RSS (KiB) that `/usr/bin/time -f %M` reports for a command."""
        out = os.path.join(self.work, "time.out")
        _, rc, _ = self.timed(rt, ["/usr/bin/time", "-f", "%M", "-o", out, *argv],
                              exe="/usr/bin/time")
        if rc != 0:
            self.fail(rt, metric, self.err_tail(rt))
            return None
        with open(out) as f:
            return int(f.read().split()[-1])

    def floor(self, floor_rt):
        base = ["/usr/bin/unshare", "--pid", "--net", "--mount", "--ipc", "--uts", "--cgroup",
                "--fork"]
        bb = os.path.join(self.rootfs, "bin", "busybox")
        for metric, argv in (("floor_spawn", [bb, "true"]),
                             ("floor", base + ["/bin/true"]),
                             ("floor_root", base + [f"--root={self.rootfs}", "/bin/true"])):
            ms, rc, _ = self.timed(floor_rt, argv, exe=argv[0])
            self.add(metric, floor_rt, ms) if rc == 0 else self.fail(floor_rt, metric,
                                                                       self.err_tail(floor_rt))
        self.add("rss_floor", floor_rt, self.gnu_time_rss(
            floor_rt, [os.path.join(self.rootfs, "bin", "busybox"), "true"], "rss_floor"))

    def batch(self, rt, k, tag):
        """k create+start+wait+delete lifecycles at once; wall time in ms."""
        b = self.bundles["true"]
        procs, inits, started, exited = {}, {}, set(), set()
        failed = 0
        t0 = time.perf_counter_ns()
        for j in range(k):
            pf = os.path.join(self.work, f"pid-b{j}")
            procs[self.spawn(rt, rt.cmd("create", "--bundle", b, "--pid-file", pf,
                                        f"{tag}-{j}"))] = ("create", j)
        pending = k

        def delete(j):
            procs[self.spawn(rt, rt.cmd("delete", f"{tag}-{j}"))] = ("delete", j)

        arm(self.a.batch_timeout)
        try:
            while pending:
                pid, status, _ = os.wait4(-1, 0)
                if pid in procs:
                    kind, j = procs.pop(pid)
                    rc = os.waitstatus_to_exitcode(status)
                    if rc != 0:
                        failed += 1
                        if kind == "delete":
                            pending -= 1
                        else:
                            procs[self.spawn(rt, rt.cmd("delete", "-f", f"{tag}-{j}"))] = ("delete", j)
                        continue
                    if kind == "create":
                        ipid = int(open(os.path.join(self.work, f"pid-b{j}")).read())
                        inits[ipid] = j
                        procs[self.spawn(rt, rt.cmd("start", f"{tag}-{j}"))] = ("start", j)
                    elif kind == "start":
                        started.add(j)
                        if j in exited:
                            delete(j)
                    else:
                        pending -= 1
                elif pid in inits:
                    j = inits.pop(pid)
                    exited.add(j)
                    if j in started:
                        delete(j)
                else:
                    self.strays += 1
        except Timeout:
            for pid in procs:
                os.kill(pid, signal.SIGKILL)
            for j in range(k):
                self.timed(rt, rt.cmd("delete", "-f", f"{tag}-{j}"))
            self.reap_strays()
            self.fail(rt, f"par{k}", f"the batch took over {self.a.batch_timeout} s; killed")
            return None
        finally:
            arm(0)
        ms = (time.perf_counter_ns() - t0) / 1e6
        if failed:
            self.fail(rt, f"par{k}", f"{failed} of {k} commands failed: {self.err_tail(rt)}")
            return None
        return ms

    def run(self):
        a = self.a
        floor_rt = Runtime("floor", "/usr/bin/unshare", "private", "")
        floor_rt.errlog = os.open(os.path.join(self.work, "stderr-floor.log"),
                                  os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self.floor_rt = floor_rt
        t_start = time.monotonic()
        self.load_before = os.getloadavg()
        names = [r.name for r in self.runtimes]
        log(f"# sequential phase: {a.iterations} round-robin iterations over {', '.join(names)}"
            " + the unshare floor")
        for i in range(a.iterations):
            order = self.runtimes[i % len(self.runtimes):] + self.runtimes[:i % len(self.runtimes)]
            for rt in order:
                self.ns.enter(rt.ns)
                self.one_lifecycle(rt, i)
            self.ns.enter("private")
            self.floor(floor_rt)
            if (i + 1) % max(1, a.iterations // 5) == 0:
                log(f"  {i + 1}/{a.iterations} ({time.monotonic() - t_start:.0f} s)")
        log(f"# idle phase: {IDLE_SAMPLES} runs each, every one after {IDLE_SECONDS} s idle")
        for i in range(IDLE_SAMPLES):
            order = self.runtimes[i % len(self.runtimes):] + self.runtimes[:i % len(self.runtimes)]
            for rt in order:
                self.ns.enter(rt.ns)
                time.sleep(IDLE_SECONDS)
                ms, rc, _ = self.timed(rt, rt.cmd("run", "--bundle", self.bundles["true"],
                                                  f"runi{i}"))
                self.add("run_idle", rt, ms) if rc == 0 else self.fail(rt, "run_idle",
                                                                        self.err_tail(rt))
        log(f"# parallel phase: {a.batch_iterations} round-robin iterations of 20 and 100 "
            "lifecycles at once")
        for i in range(a.batch_iterations):
            order = self.runtimes[i % len(self.runtimes):] + self.runtimes[:i % len(self.runtimes)]
            for k in (20, 100):
                for rt in order:
                    self.ns.enter(rt.ns)
                    self.add(f"par{k}", rt, self.batch(rt, k, f"p{k}-{i}"))
                    self.reap_strays()
            if (i + 1) % max(1, a.batch_iterations // 5) == 0:
                log(f"  {i + 1}/{a.batch_iterations} ({time.monotonic() - t_start:.0f} s)")
        self.elapsed = time.monotonic() - t_start

    def cleanup(self):
        for rt in self.runtimes:
            try:
                self.ns.enter(rt.ns)
                self.timed(rt, rt.cmd("delete", "-f", "sleeper"))
            except Exception as e:  # noqa: BLE001
                log(f"  ! cleanup {rt.name}: {e}")
            # Anything a failed step left behind.
            try:
                for cid in os.listdir(rt.root):
                    self.timed(rt, rt.cmd("delete", "-f", cid))
            except FileNotFoundError:
                pass
        self.reap_strays()
        self.ns.enter("host")


def version_of(rt):
    try:
        out = subprocess.run([rt.exe, "--version"], env=ENV, capture_output=True, text=True,
                             timeout=10).stdout
        return out.splitlines()[0].strip() if out else "?"
    except Exception:  # noqa: BLE001
        return "?"


# -- statistics and reports -----------------------------------------------------

def summarise(values):
    v = sorted(values)
    n = len(v)
    return {
        "median": statistics.median(v),
        "p95": v[max(0, math.ceil(0.95 * n) - 1)],
        "mean": statistics.fmean(v),
        "min": v[0],
        "max": v[-1],
        "n": n,
    }


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return f"{value:,.0f}"


def build_results(bench, args):
    rts = bench.runtimes
    res = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "iterations": args.iterations,
            "batch_iterations": args.batch_iterations,
            "quick": args.quick,
            "elapsed_s": round(bench.elapsed, 1),
            "loadavg_before": [round(x, 2) for x in bench.load_before],
            "baseline": BASELINE,
            "private_namespace_detached": bench.ns.detached,
            "stray_children_reaped": bench.strays,
        },
        "runtimes": {},
        "metrics": {},
        "ratios": {},
        "ratio_base": {},
        "floor": {},
        "run_over_floor": {},
        "notes": bench.notes + list(args.note or []),
    }
    for rt in rts:
        real = os.path.realpath(getattr(rt, "size_of", rt.exe))
        size = os.path.getsize(real)
        bench.samples.setdefault("size", {})[rt.name] = [size / 1024]
        res["runtimes"][rt.name] = {
            "path": real,
            "version": getattr(rt, "version", "?"),
            "mount_namespace": ("host (cgroup v1 + cgroup2 hybrid)" if rt.ns == "host"
                                else "private (plain cgroup v1)"),
            "global_args": rt.extra,
            "dynamic_libs": dynamic_libs(real),
            "diagnostic": rt.diag,
            "notes": rt.notes,
            "failures": rt.failures,
        }
    for key, _, _ in METRICS:
        res["metrics"][key] = {}
        for rt in rts:
            vals = bench.samples.get(key, {}).get(rt.name)
            res["metrics"][key][rt.name] = summarise(vals) if vals else None
        # crun has no `events`: such a metric is compared with runc's instead.
        base_name = BASELINE if res["metrics"][key].get(BASELINE) else "runc"
        res["ratio_base"][key] = base_name
        base = res["metrics"][key].get(base_name)
        res["ratios"][key] = {
            rt.name: (res["metrics"][key][rt.name]["median"] / base["median"]
                      if base and res["metrics"][key][rt.name] else None)
            for rt in rts
        }
    for key, _, _ in FLOOR_METRICS:
        vals = bench.samples.get(key, {}).get("floor")
        res["floor"][key] = summarise(vals) if vals else None
    fl = res["floor"].get("floor")
    for rt in rts:
        r = res["metrics"]["run"][rt.name]
        res["run_over_floor"][rt.name] = r["median"] / fl["median"] if r and fl else None
    return res


def dynamic_libs(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=10).stdout
    except Exception:  # noqa: BLE001
        return []
    libs = []
    for line in out.splitlines():
        name = line.strip().split(" ")[0]
        if name.startswith(("linux-vdso", "/lib64/ld-linux")) or "statically" in line:
            continue
        libs.append(name)
    return libs


def ratio_label(res, key, label):
    """The metric's label, naming the runtime its ratios are to when that
    is not the baseline."""
    base = res["ratio_base"].get(key, BASELINE)
    return label if base == BASELINE else f"{label} (÷ {base})"


def tables(res, markdown):
    names = list(res["runtimes"])
    out = []

    def row(cells):
        if markdown:
            return "| " + " | ".join(cells) + " |"
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths))

    head = ["metric"] + names
    widths = [34] + [max(15, len(n) + 1) for n in names]
    title = f"Ratio of the median to {BASELINE}'s (lower is better; {BASELINE} = 1.00)"
    out.append(f"### {title}" if markdown else title)
    out.append("")
    out.append(row(head))
    if markdown:
        out.append("|" + "---|" * len(head))
    for key, label, unit in METRICS:
        cells = [ratio_label(res, key, label)]
        for n in names:
            r = res["ratios"][key].get(n)
            cells.append("-" if r is None else f"{r:.2f}")
        out.append(row(cells))
    cells = ["run ÷ kernel floor"]
    for n in names:
        r = res["run_over_floor"].get(n)
        cells.append("-" if r is None else f"{r:.1f}×")
    out.append(row(cells))
    out.append("")
    title = "Median (p95); times in ms, RSS and size in KiB"
    out.append(f"### {title}" if markdown else title)
    out.append("")
    out.append(row(head))
    if markdown:
        out.append("|" + "---|" * len(head))
    for key, label, unit in METRICS:
        cells = [f"{label} ({unit})"]
        for n in names:
            s = res["metrics"][key].get(n)
            if s is None:
                cells.append("-")
            elif key == "size":
                cells.append(fmt(s["median"], unit))
            else:
                cells.append(f"{fmt(s['median'], unit)} ({fmt(s['p95'], unit)})")
        out.append(row(cells))
    out.append("")
    title = "Floors (no runtime): median (p95)"
    out.append(f"### {title}" if markdown else title)
    out.append("")
    for key, label, unit in FLOOR_METRICS:
        s = res["floor"].get(key)
        if s:
            out.append(f"{'- ' if markdown else '  '}{label}: {fmt(s['median'], unit)} "
                       f"({fmt(s['p95'], unit)}) {unit}")
    return "\n".join(out)


def describe(res, markdown):
    m = res["meta"]
    lines = [
        f"{m['date']}, kernel {m['kernel']}, {m['cpus']} CPUs; {m['iterations']} iterations "
        f"(parallel batches: {m['batch_iterations']}){' [--quick]' if m['quick'] else ''}; "
        f"measuring took {m['elapsed_s']} s; 1-minute load average before it: "
        f"{m['loadavg_before'][0]}.",
    ]
    for n, r in res["runtimes"].items():
        extra = f" {' '.join(r['global_args'])}" if r["global_args"] else ""
        libs = f"; links {', '.join(r['dynamic_libs'])}" if r["dynamic_libs"] else ""
        notes = f" — {'; '.join(r['notes'])}" if r["notes"] else ""
        fails = f"; FAILURES {r['failures']}" if r["failures"] else ""
        lines.append(f"{'- ' if markdown else '  '}{n}: {r['version']}{extra}, "
                     f"{r['mount_namespace']}{libs}{notes}{fails}")
    for note in res["notes"]:
        lines.append(f"{'- ' if markdown else '  '}note: {note}")
    return "\n".join(lines)


# -- SVG -------------------------------------------------------------------------

COLOURS = {
    "capsa": "#d95f02",
    "capsa-hybrid": "#fdae6b",
    "crun": "#555555",
    "runc": "#1b9e77",
    "youki": "#7570b3",
    "capsa-presealed": "#e7298a",
}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_chart(res, include_diag=False):
    names = [n for n, r in res["runtimes"].items()
             if n != BASELINE and (include_diag or not r["diagnostic"])]
    ratios = [res["ratios"][k][n] for k, _, _ in METRICS for n in names
              if res["ratios"][k].get(n)]
    lo = min([0.5] + ratios)
    hi = max([2.0] + ratios)
    # Room for the value labels beyond the longest bars.
    lo_e = math.floor(math.log2(lo) - 0.35)
    hi_e = math.ceil(math.log2(hi) + 0.35)
    left, right, top = 215, 70, 78
    plot_w = 560
    bar_h, gap = 11, 10
    group_h = len(names) * bar_h + gap
    height = top + len(METRICS) * group_h + 50
    width = left + plot_w + right

    def x(r):
        return left + (math.log2(r) - lo_e) / (hi_e - lo_e) * plot_w

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
         f'font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" '
         f'font-weight="bold">OCI runtimes: median of each metric ÷ {BASELINE}\'s '
         f'(log scale; left of the line is faster/smaller)</text>']
    m = res["meta"]
    o.append(f'<text x="{width / 2}" y="37" text-anchor="middle" fill="#555">'
             f'{esc(m["date"])}, kernel {esc(m["kernel"])}, {m["cpus"]} CPUs, '
             f'{m["iterations"]} iterations'
             f'{" (quick)" if m["quick"] else ""}</text>')
    lx = left
    for n in names:
        o.append(f'<rect x="{lx}" y="48" width="12" height="12" fill="{COLOURS.get(n, "#999")}"/>')
        o.append(f'<text x="{lx + 16}" y="58">{esc(n)}</text>')
        lx += 24 + 7 * len(n)
    o.append(f'<line x1="{lx}" y1="54" x2="{lx + 12}" y2="54" stroke="black" '
             f'stroke-dasharray="4 2"/><text x="{lx + 16}" y="58">{BASELINE} = 1.0</text>')
    bottom = top + len(METRICS) * group_h
    for e in range(lo_e, hi_e + 1):
        r = 2.0 ** e
        xx = x(r)
        o.append(f'<line x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{bottom}" '
                 f'stroke="#e5e5e5"/>')
        label = f"{r:g}" if r >= 1 else f"1/{int(round(1 / r))}"
        o.append(f'<text x="{xx:.1f}" y="{bottom + 16}" text-anchor="middle" '
                 f'fill="#555">{label}</text>')
    o.append(f'<text x="{left + plot_w / 2}" y="{bottom + 34}" text-anchor="middle" '
             f'fill="#555">ratio to {BASELINE} (median)</text>')
    for gi, (key, label, _) in enumerate(METRICS):
        gy = top + gi * group_h
        if gi % 2 == 0:
            o.append(f'<rect x="0" y="{gy - gap / 2}" width="{width}" height="{group_h}" '
                     f'fill="#f7f7f7"/>')
        o.append(f'<text x="{left - 8}" y="{gy + len(names) * bar_h / 2 + 4}" '
                 f'text-anchor="end">{esc(ratio_label(res, key, label))}</text>')
        for bi, n in enumerate(names):
            r = res["ratios"][key].get(n)
            y = gy + bi * bar_h
            if not r:
                o.append(f'<text x="{x(1) + 4}" y="{y + 9}" font-size="9" fill="#999">'
                         f'{esc(n)}: n/a</text>')
                continue
            x0, x1 = sorted((x(1), x(r)))
            o.append(f'<rect x="{x0:.1f}" y="{y + 1}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{bar_h - 2}" fill="{COLOURS.get(n, "#999")}">'
                     f'<title>{esc(n)}: {r:.2f}</title></rect>')
            tx = x1 + 3 if r >= 1 else x0 - 3
            anchor = "start" if r >= 1 else "end"
            o.append(f'<text x="{tx:.1f}" y="{y + 9}" font-size="9" text-anchor="{anchor}">'
                     f'{r:.2f}</text>')
    o.append(f'<line x1="{x(1):.1f}" y1="{top - 6}" x2="{x(1):.1f}" y2="{bottom}" '
             f'stroke="black" stroke-dasharray="4 2"/>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runtime", action="append", required=True,
                   help="NAME=PATH; a NAME ending in -hybrid runs in the host's mount namespace")
    p.add_argument("--spec-template", required=True, help="config.json from `capsa spec`")
    p.add_argument("--work", required=True, help="scratch directory holding rootfs/")
    p.add_argument("--out", required=True)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--batch-iterations", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-diag", dest="diag", action="store_false")
    p.add_argument("--command-timeout", type=float, default=30,
                   help="seconds before a single command counts as hung")
    p.add_argument("--batch-timeout", type=float, default=300)
    p.add_argument("--note", action="append", help="a line for the report")
    a = p.parse_args()
    if a.batch_iterations is None:
        a.batch_iterations = min(a.iterations, 20)
    b = Bench(a)
    log(f"# private mount namespace: detached {', '.join(b.ns.detached) or 'nothing'}")
    b.make_bundles()
    b.setup_runtimes()
    b.crun_cgroup_check()
    b.warm_up()
    if BASELINE not in [r.name for r in b.runtimes]:
        log(f"error: the baseline {BASELINE} cannot run here")
        b.cleanup()
        return 1
    b.ns.enter("private")
    b.start_lock_warmer()
    try:
        b.run()
    finally:
        arm(0)
        b.stop_lock_warmer()
        b.cleanup()
    res = build_results(b, a)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    md = ["# capsa benchmark", "", describe(res, True), "", tables(res, True), "",
          "![ratios to crun](chart.svg)", ""]
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(a.out, "chart.svg"), "w") as f:
        f.write(svg_chart(res))
    print(describe(res, False))
    print()
    print(tables(res, False))
    print()
    print(f"wrote {a.out}/results.json, results.md, chart.svg")
    # capsa's failures fail the run (CI's smoke check); a peer's are only reported.
    bad = {n: r["failures"] for n, r in res["runtimes"].items()
           if r["failures"] and n.startswith("capsa")}
    if bad:
        log(f"error: capsa failed: {bad}")
    return 0 if not bad else 3


if __name__ == "__main__":
    sys.exit(main())
