#!/usr/bin/python3
"""A test double of systemd's manager (org.freedesktop.systemd1) on a private
D-Bus bus, for capsa's systemd cgroup driver tests (tests/systemd_cgroup.rs).

It records every call it gets, with the exact D-Bus types of the arguments,
one JSON object per line in RECORD, and does for a transient scope what
systemd does for its cgroup: StartTransientUnit makes the unit's cgroup
directory in each HIERARCHY given (mount points), moves the PIDs into it and
emits JobRemoved(..., "done"); StopUnit kills what is in it, removes the
directories it made and emits JobRemoved. A unit whose name contains
"jobfails" gets a JobRemoved result "failed" instead (and nothing is made).

usage: mock_systemd1.py BUS_ADDRESS RECORD HIERARCHY...
Prints READY once it owns the name. Uses python3-dbus and python3-gi.
"""

import json
import os
import signal
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

NAME = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
VERSION = "252.22-1~deb12u1"


def typed(v):
    """A D-Bus value as JSON: [signature, value] so tests see exact types."""
    if isinstance(v, dbus.Boolean):
        return ["b", bool(v)]
    for cls, sig in ((dbus.Byte, "y"), (dbus.UInt32, "u"), (dbus.UInt64, "t"),
                     (dbus.Int32, "i"), (dbus.Int64, "x"), (dbus.UInt16, "q"),
                     (dbus.Int16, "n")):
        if isinstance(v, cls):
            return [sig, int(v)]
    if isinstance(v, dbus.ObjectPath):
        return ["o", str(v)]
    if isinstance(v, dbus.String):
        return ["s", str(v)]
    if isinstance(v, dbus.Array):
        return ["a" + (v.signature or "?"), [typed(x) for x in v]]
    if isinstance(v, dbus.Struct):
        return ["r", [typed(x) for x in v]]
    return ["?", repr(v)]


def expand_slice(slice_name):
    stem = slice_name[: -len(".slice")]
    if stem == "-":
        return ""
    path, prefix = "", ""
    for part in stem.split("-"):
        prefix += part
        path += "/" + prefix + ".slice"
        prefix += "-"
    return path


class Manager(dbus.service.Object):
    def __init__(self, bus, record, hierarchies):
        super().__init__(bus, PATH)
        self.record_path = record
        self.hierarchies = hierarchies
        self.units = {}  # name -> list of directories made, parents first
        self.jobs = 0

    def record(self, method, *args):
        with open(self.record_path, "a") as f:
            f.write(json.dumps({"method": method, "args": [typed(a) for a in args]}) + "\n")

    def job(self, unit, result):
        self.jobs += 1
        job_id, path = self.jobs, "%s/job/%d" % (PATH, self.jobs)
        # After the method has returned, as systemd does.
        GLib.timeout_add(20, lambda: self.JobRemoved(job_id, path, unit, result) and False)
        return dbus.ObjectPath(path)

    def unit_dirs(self, name, props):
        if name.endswith(".slice"):
            rel = expand_slice(name)
        else:
            rel = expand_slice(props.get("Slice", "system.slice")) + "/" + name
        return [h + rel for h in self.hierarchies]

    @dbus.service.method(MANAGER, in_signature="", out_signature="")
    def Subscribe(self):
        self.record("Subscribe")

    @dbus.service.method(MANAGER, in_signature="ssa(sv)a(sa(sv))", out_signature="o")
    def StartTransientUnit(self, name, mode, props, aux):
        self.record("StartTransientUnit", name, mode, props, aux)
        if name in self.units:
            raise dbus.exceptions.DBusException(
                "Unit %s already exists." % name, name="org.freedesktop.systemd1.UnitExists")
        if "jobfails" in name:
            return self.job(str(name), "failed")
        props = {str(k): v for k, v in props}
        made = []
        for d in self.unit_dirs(str(name), props):
            parts = d.split("/")
            for i in range(4, len(parts) + 1):
                p = "/".join(parts[:i])
                if not os.path.isdir(p):
                    os.mkdir(p)
                    made.append(p)
            for pid in props.get("PIDs", []):
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(int(pid)))
        self.units[str(name)] = made
        return self.job(str(name), "done")

    @dbus.service.method(MANAGER, in_signature="ss", out_signature="o")
    def StopUnit(self, name, mode):
        self.record("StopUnit", name, mode)
        made = self.units.pop(str(name), None)
        if made is None:
            raise dbus.exceptions.DBusException(
                "Unit %s not loaded." % name, name="org.freedesktop.systemd1.NoSuchUnit")
        for d in reversed(made):
            procs = os.path.join(d, "cgroup.procs")
            deadline = time.time() + 5
            while os.path.exists(procs) and time.time() < deadline:
                pids = open(procs).read().split()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.02)
        # The unit's directories, then the slices made for it if they are
        # empty now (rmdir of a cgroup with children fails, which is fine).
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        return self.job(str(name), "done")

    @dbus.service.method(MANAGER, in_signature="s", out_signature="")
    def ResetFailedUnit(self, name):
        self.record("ResetFailedUnit", name)

    @dbus.service.method(MANAGER, in_signature="sba(sv)", out_signature="")
    def SetUnitProperties(self, name, runtime, props):
        self.record("SetUnitProperties", name, runtime, props)
        if str(name) not in self.units:
            raise dbus.exceptions.DBusException(
                "Unit %s not loaded." % name, name="org.freedesktop.systemd1.NoSuchUnit")

    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        self.record("Get", interface, prop)
        if interface == MANAGER and prop == "Version":
            return dbus.String(VERSION, variant_level=1)
        raise dbus.exceptions.DBusException(
            "no property %s" % prop, name="org.freedesktop.DBus.Error.UnknownProperty")

    @dbus.service.signal(MANAGER, signature="uoss")
    def JobRemoved(self, job_id, job, unit, result):
        pass


def main():
    address, record, hierarchies = sys.argv[1], sys.argv[2], sys.argv[3:]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    name = dbus.service.BusName(NAME, bus)
    manager = Manager(bus, record, hierarchies)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("READY", flush=True)
    loop.run()
    # Leave no directory behind for units nobody stopped.
    for made in manager.units.values():
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass
    del name


if __name__ == "__main__":
    main()
