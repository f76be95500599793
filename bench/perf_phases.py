#!/usr/bin/env python3
"""Splits a `perf script` dump of capsa lifecycles into phases and causes.

Input: `perf script -F comm,pid,ip,sym,dso --comms capsa,memfd:capsa,true`
of a system-wide `perf record -g` over N create + start + delete cycles
(bench/profile.sh). A capsa process that re-executes itself from its sealed
memfd changes its comm from `capsa` to `memfd:capsa`, so its samples split
into "before" and "after the re-exec"; a `memfd:capsa` pid that never was
`capsa` is a container init forked by create; a pid that stays `capsa` is
start or delete. Prints milliseconds of CPU per lifecycle.
"""

import collections
import re
import sys

RULES = [
    ("memfd copy of the binary (sendfile into shmem)",
     ("do_sendfile", "splice_direct_to_actor", "shmem_file_write_iter")),
    ("cpuid probing in glibc/ld.so start-up (a VM exit each)",
     ("intel_check_word", "handle_intel", "init_cpu_features", "get_common_cache_info",
      "update_active", "__cpu_indicator_init", "get_common_indices", "init_cacheinfo")),
    ("execve in the kernel (load the image, drop the old mm)",
     ("bprm_execve", "do_execveat_common", "load_elf_binary", "begin_new_exec")),
    ("dynamic linking (ld.so relocations, symbol lookup)",
     ("_dl_relocate_object", "do_lookup_x", "check_match", "_dl_lookup_symbol_x",
      "_dl_map_object", "dl_main", "_dl_start")),
    ("page faults", ("exc_page_fault",)),
    ("clone and new namespaces", ("copy_namespaces", "copy_net_ns", "setup_net",
                                  "create_new_namespaces", "copy_process", "kernel_clone")),
    ("mounts, pivot_root", ("path_mount", "__x64_sys_mount", "__x64_sys_pivot_root",
                            "__x64_sys_umount", "do_move_mount", "__x64_sys_mount_setattr",
                            "__x64_sys_open_tree", "__x64_sys_fsmount")),
    ("cgroup files (mkdir, write, rmdir)", ("cgroup_", "kernfs_")),
    ("process exit, mm teardown", ("do_exit", "exit_mmap", "do_group_exit", "mmput")),
    ("other system calls", ("do_syscall_64",)),
]


def classify(frames):
    for label, keys in RULES:
        for name in frames:
            if name.startswith(keys):
                return label
    return "user space (capsa's own code, libc)"


def read_samples(path):
    samples, cur = [], None
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if cur:
                    samples.append(cur)
                cur = None
            elif not line[0].isspace():
                comm, pid = line.split()[:2]
                cur = (comm, pid, [])
            elif cur is not None:
                m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
                if m:
                    cur[2].append(m.group(1))
    if cur:
        samples.append(cur)
    return samples


def main():
    path, cycles, freq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ms = 1000 / freq / cycles
    samples = read_samples(path)
    comms = collections.defaultdict(set)
    for comm, pid, _ in samples:
        comms[pid].add(comm)
    phases = collections.defaultdict(collections.Counter)
    for comm, pid, frames in samples:
        c = comms[pid]
        if "capsa" in c and "memfd:capsa" in c:
            phase = ("1", "create, before its sealed re-exec") if comm == "capsa" \
                else ("2", "create, after the re-exec")
        elif "memfd:capsa" in c or "true" in c:
            phase = ("3", "container init, until it execs /bin/true")
        else:
            phase = ("4", "start + delete (no re-exec)")
        phases[phase][classify(frames)] += 1
    total = 0
    for phase in sorted(phases):
        n = sum(phases[phase].values())
        total += n
        print(f"{phase[1]}: {n * ms:.2f} ms CPU per lifecycle")
        for label, k in phases[phase].most_common(8):
            print(f"  {k * ms:6.2f}  {label}")
    print(f"all capsa processes: {total * ms:.2f} ms CPU per lifecycle")


if __name__ == "__main__":
    main()
