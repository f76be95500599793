#!/usr/bin/env python3
"""Run a command on a fresh pty (as a person at a terminal would) and relay its output.

usage: ptyrun.py [--rows R] [--cols C] [--input TEXT] [--timeout S] -- CMD ARGS...

The pty gets the window size R x C before the command starts; TEXT (with \\n
escapes) is typed into the terminal once the command has printed something or
after 1 s. Everything the command writes to the terminal goes to our stdout,
\\r\\n turned into \\n. Exit status: the command's, 124 on timeout.
"""
import argparse, fcntl, os, pty, select, signal, struct, sys, termios, time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=30)
ap.add_argument("--cols", type=int, default=100)
ap.add_argument("--input", default=None)
ap.add_argument("--timeout", type=float, default=30)
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

pid, fd = pty.fork()
if pid == 0:
    # child: the pty slave is already our controlling terminal and stdio
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.cols, 0, 0))
    os.execvp(cmd[0], cmd)

out = bytearray()
deadline = time.monotonic() + a.timeout
typed = a.input is None
start = time.monotonic()
status = None
while True:
    if not typed and (out or time.monotonic() - start > 1.0):
        os.write(fd, a.input.encode().decode("unicode_escape").encode())
        typed = True
    left = deadline - time.monotonic()
    if left <= 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
        sys.stderr.write("ptyrun: timeout after %ss\n" % a.timeout)
        sys.exit(124)
    r, _, _ = select.select([fd], [], [], min(left, 0.1))
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if data:
            out += data
            continue
    if status is None:
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            status = st
            # drain what is left, then stop
            deadline = min(deadline, time.monotonic() + 1.0)
            continue
    elif not r or not data:
        break
sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
