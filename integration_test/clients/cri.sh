# Kubernetes' path: containerd 1.6's CRI plugin driven over its gRPC socket as
# the kubelet drives it, with a RuntimeClass-style runtime handler per runtime:
# handler NAME = runtime_type io.containerd.runc.v2 with BinaryName = the
# runtime (NAME is its basename: "capsa" for capsa, "runc" for the oracle) and
# its own runc root W/cri/rt-root-NAME, so the state dirs it makes are known
# (<root>/k8s.io/<id>). Sourced by run.sh and by each test process.
# Environment from cri_setup: CRI_DIR CRI_ADDR CRI_PY CRI_GEN CRI_TAG
# CRI_BRIDGE CRI_SUBNET CRI_NET CRI_STATE CRI_IMG CRI_PAUSE; from run.sh: RT
# RTLABEL WORK. A pod's cgroup parent is /cri-<tag>-<runtime>.
#
# A private containerd (own socket, root and state under W/cri, its own
# k8s.io namespace there), the CNI bridge plugin of Debian's
# containernetworking-plugins (bridge cri-XXXXXX, subnet 10.231.77.0/24,
# host-local IPAM with its data under W/cri), a pause image made from busybox
# and both images imported with `ctr -n k8s.io images import` (nothing is
# pulled). The client is ours (cri/cri_client.py over cri/cri.proto, compiled
# with grpcio-tools in a venv under the work dir).

cri() { "$CRI_PY" "$CLIENTS_DIR/cri/cri_client.py" --socket "$CRI_ADDR" --gen "$CRI_GEN" "$@"; }
# jget JSON PYTHON-EXPR: evaluate EXPR on the parsed JSON (as `d`), print it.
jget() { "$CRI_PY" -c 'import json,sys; d=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1" "$2"; }
# cri_json CMD...: a call whose reply is a (long) JSON document, printed;
# expect_rc would echo it into the log.
cri_json() {
  local out
  out=$(cri "$@") || die "cri $* failed"
  echo "+ cri $* -> 0 (JSON reply: ${#out} bytes)" >&2
  printf '%s\n' "$out"
}
rt_root() { echo "$CRI_DIR/rt-root-$RTLABEL/k8s.io"; }
cg_parent() { echo "cri-$CRI_TAG-$RTLABEL"; }
bridge_ports() { ip -o link show master "$CRI_BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | sed 's/@.*//'; }

# ------------------------------------------------------------------ configs

pod_config() { # FILE NAME
  cat >"$1" <<EOF
{
  "metadata": {"name": "$2", "uid": "$2-uid", "namespace": "cri-test", "attempt": 0},
  "hostname": "$2-host",
  "log_directory": "$CRI_DIR/logs/$2",
  "dns_config": {"servers": ["192.0.2.53"], "searches": ["cri.test"]},
  "labels": {"cri-test": "$RTLABEL"},
  "linux": {
    "cgroup_parent": "/$(cg_parent)",
    "security_context": {"namespace_options": {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}}
  }
}
EOF
}

container_config() { # FILE NAME MEMORY_LIMIT ARGS_JSON
  cat >"$1" <<EOF
{
  "metadata": {"name": "$2", "attempt": 0},
  "image": {"image": "$CRI_IMG"},
  "command": $4,
  "envs": [{"key": "CRI_TEST", "value": "$2"}],
  "log_path": "$2.log",
  "labels": {"cri-test": "$RTLABEL"},
  "linux": {
    "resources": {"memory_limit_in_bytes": $3},
    "security_context": {"namespace_options": {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}}
  }
}
EOF
}

# ---------------------------------------------------------------- leftovers

# Everything of the pod POD_ID (sandbox + containers IDS) that may remain:
# runtime state dirs, cgroups, mounts, its netns, veths on the bridge, the
# pause and container processes, their shims, containerd's records, the IP.
# cri_leftovers POD_ID NETNS IP PIDS -- IDS...
cri_leftovers() {
  local pod=$1 netns=$2 ip=$3 pids=$4 id p
  shift 5
  for id in "$pod" "$@"; do
    leftovers_of "$id" "$(rt_root)" "$(cg_parent)/$id"
    pgrep -af "containerd-shim-runc-v2 .*-id $id " | sed 's/^/shim: /' || true
  done
  [ ! -e "$netns" ] || echo "netns: $netns"
  grep -F " $netns " /proc/self/mountinfo | sed 's/^/netns mount: /' || true
  [ -z "$(bridge_ports)" ] || echo "veths on $CRI_BRIDGE: $(bridge_ports | tr '\n' ' ')"
  [ ! -e "$CRI_DIR/ipam/$CRI_NET/$ip" ] || echo "IPAM reservation: $CRI_DIR/ipam/$CRI_NET/$ip"
  for p in $pids; do
    [ ! -d "/proc/$p" ] || echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
  done
  cri pods | grep -F "$pod" | sed 's/^/CRI pod: /' || true
}

expect_no_cri_leftovers() { expect_clean "pod $1" cri_leftovers "$@"; }

# What a failed test leaves: its pod goes, containers and all (the kubelet's
# StopPodSandbox + RemovePodSandbox).
remove_pod_quietly() {
  cri stopp "$1" >/dev/null 2>&1 || true
  cri rmp "$1" >/dev/null 2>&1 || true
}

ns_of() { readlink "/proc/$1/ns/$2"; }

# The runtime under test made container ID: its state dir is in the handler's
# root, and the runtime itself (`RT --root ROOT state ID`) reports it running
# with PID.
expect_ran_on_runtime() { # ID PID
  [ -d "$(rt_root)/$1" ] || die "no state dir $(rt_root)/$1: $1 did not run on $RT"
  local st
  st=$("$RT" --root "$(rt_root)" state "$1") || die "$RT state $1 failed"
  expect_eq "$(jget "$st" 'd["status"]')" running "$RT state $1: status"
  expect_eq "$(jget "$st" 'd["pid"]')" "$2" "$RT state $1: pid"
  echo "+ $RT state $1: running, pid $2" >&2
}

# ------------------------------------------------------------------ scenarios

# A pod with two containers, driven as the kubelet does, then nothing left.
k_pod_lifecycle() {
  local name=cri-$RTLABEL-pod dir=$CRI_DIR/$RTLABEL
  mkdir -p "$dir" "$CRI_DIR/logs/$name"
  pod_config "$dir/pod.json" "$name"
  container_config "$dir/a.json" web 67108864 \
    '["sh", "-c", "trap \"echo a-got-term; exit 0\" TERM; echo a-started; mkdir -p /www; echo from-$CRI_TEST > /www/index.html; httpd -f -p 127.0.0.1:8080 -h /www & wait"]'
  container_config "$dir/b.json" client 0 '["sleep", "1000"]'
  container_config "$dir/bad.json" bad 0 '["/no/such/binary"]'

  # -- RunPodSandbox with the handler: the pause runs on the runtime
  expect_rc 0 cri runp --handler "$RTLABEL" "$dir/pod.json"
  local pod=$OUT
  cleanup_later remove_pod_quietly "$pod"
  local st
  st=$(cri_json inspectp "$pod")
  expect_eq "$(jget "$st" 'd["status"].get("state", "SANDBOX_READY")')" SANDBOX_READY "pod state"
  expect_eq "$(jget "$st" 'd["status"]["runtime_handler"]')" "$RTLABEL" "pod runtime handler"
  expect_eq "$(jget "$st" 'd["info"]["info"]["runtimeOptions"]["binary_name"]')" "$RT" "handler's BinaryName"
  local ip pause netns
  ip=$(jget "$st" 'd["status"]["network"]["ip"]')
  pause=$(jget "$st" 'd["info"]["info"]["pid"]')
  netns=$(jget "$st" 'd["info"]["info"]["runtimeSpec"]["linux"]["namespaces"]' |
    "$CRI_PY" -c 'import json,sys; print([n["path"] for n in json.load(sys.stdin) if n["type"] == "network"][0])')
  echo "+ pod $pod: ip $ip, pause pid $pause, netns $netns" >&2
  case "$ip" in "${CRI_SUBNET%.*}".*) ;; *) die "pod IP $ip is not in $CRI_SUBNET" ;; esac
  [ -e "$CRI_DIR/ipam/$CRI_NET/$ip" ] || die "no host-local reservation for $ip"
  expect_ran_on_runtime "$pod" "$pause"
  expect_contains "$(cat "/proc/$pause/cgroup")" "memory:/$(cg_parent)/$pod" "pause's cgroup"
  expect_eq "$(tr '\0' ' ' <"/proc/$pause/cmdline")" "/bin/sh /pause " "pause's command line"
  expect_eq "$(ns_of "$pause" net)" "$(stat -L -c 'net:[%i]' "$netns")" "pause's network namespace"
  # the pod's eth0 is a veth whose host end is on the bridge
  local peer host_end
  peer=$(nsenter --net="$netns" ip -o link show eth0 | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
  [ -n "$peer" ] || die "no veth eth0 in $netns: $(nsenter --net="$netns" ip -o link)"
  host_end=$(ip -o link show | awk -F': ' -v i="$peer" '$1 == i { print $2 }' | sed 's/@.*//')
  expect_contains "$(bridge_ports)" "$host_end" "ports of $CRI_BRIDGE"
  expect_contains "$(nsenter --net="$netns" ip -o -4 addr show eth0)" "$ip/" "eth0 in the pod"

  # -- two containers join the pod's network, IPC and UTS namespaces
  expect_rc 0 cri create "$pod" "$dir/a.json" "$dir/pod.json"
  local a=$OUT
  expect_rc 0 cri create "$pod" "$dir/b.json" "$dir/pod.json"
  local b=$OUT
  expect_rc 0 cri start "$a"
  expect_rc 0 cri start "$b"
  local c pa pb
  for c in "$a" "$b"; do
    expect_eq "$(jget "$(cri_json inspect "$c")" 'd["status"]["state"]')" CONTAINER_RUNNING "state of $c"
  done
  pa=$(jget "$(cri_json inspect "$a")" 'd["info"]["info"]["pid"]')
  pb=$(jget "$(cri_json inspect "$b")" 'd["info"]["info"]["pid"]')
  expect_ran_on_runtime "$a" "$pa"
  expect_ran_on_runtime "$b" "$pb"
  for c in "$pa" "$pb"; do
    local ns
    for ns in net ipc uts; do
      expect_eq "$(ns_of "$c" $ns)" "$(ns_of "$pause" $ns)" "$ns namespace of pid $c (pause: $pause)"
    done
    [ "$(ns_of "$c" pid)" != "$(ns_of "$pause" pid)" ] || die "pid $c shares the pause's pid namespace"
    [ "$(ns_of "$c" mnt)" != "$(ns_of "$pause" mnt)" ] || die "pid $c shares the pause's mount namespace"
  done
  expect_contains "$(cat "/proc/$pa/cgroup")" "memory:/$(cg_parent)/$a" "cgroup of container a"
  expect_eq "$(cat "/sys/fs/cgroup/memory/$(cg_parent)/$a/memory.limit_in_bytes")" 67108864 "a's memory limit"

  # -- ExecSync: the pod's hostname in both, b reaches a's loopback listener
  for c in "$a" "$b"; do
    expect_rc 0 cri exec-sync --timeout 30 "$c" hostname
    expect_eq "$OUT" "$name-host" "hostname in $c"
  done
  wait_for 20 cri exec-sync --timeout 10 "$b" wget -q -O /dev/null http://127.0.0.1:8080/
  expect_rc 0 cri exec-sync --timeout 30 "$b" wget -q -O - http://127.0.0.1:8080/
  expect_eq "$OUT" from-web "b's GET of a's 127.0.0.1:8080"
  expect_rc 0 cri exec-sync --timeout 30 "$b" ip -o -4 addr show eth0
  expect_contains "$OUT" "$ip/" "eth0 seen from b"
  expect_rc 3 cri exec-sync --timeout 30 "$b" sh -c 'echo out-$CRI_TEST; echo err >&2; exit 3'
  expect_eq "$OUT" out-client "ExecSync stdout"
  expect_eq "$ERR" err "ExecSync stderr"
  expect_rc 125 cri exec-sync --timeout 30 "$b" /no/such/binary
  expect_contains "$ERR" "no such file or directory" "ExecSync of a missing binary"
  expect_contains "$(cat "$CRI_DIR/logs/$name/web.log")" " stdout F a-started" "a's CRI log"

  # -- ContainerStats: numbers from a's cgroup
  local stats mem cpu
  stats=$(cri_json stats "$a")
  mem=$(jget "$stats" 'int(d["stats"]["memory"]["working_set_bytes"]["value"])')
  cpu=$(jget "$stats" 'int(d["stats"]["cpu"]["usage_core_nano_seconds"]["value"])')
  [ "$mem" -gt 0 ] || die "working_set_bytes $mem"
  [ "$cpu" -gt 0 ] || die "usage_core_nano_seconds $cpu"

  # -- a failed start carries the runtime's error
  expect_rc 0 cri create "$pod" "$dir/bad.json" "$dir/pod.json"
  local bad=$OUT
  expect_rc 125 cri start "$bad"
  expect_contains "$ERR" "OCI runtime create failed" "StartContainer of a missing binary"
  expect_contains "$ERR" "no such file or directory" "StartContainer of a missing binary"
  expect_rc 0 cri rm "$bad"

  # -- StopContainer: a exits on SIGTERM (0), b ignores it as pid 1 (137 after 1 s)
  expect_rc 0 cri stop --timeout 10 "$a"
  expect_rc 0 cri stop --timeout 1 "$b"
  st=$(cri_json inspect "$a")
  expect_eq "$(jget "$st" 'd["status"]["state"]')" CONTAINER_EXITED "a after StopContainer"
  expect_eq "$(jget "$st" 'd["status"].get("exit_code", 0)')" 0 "a's exit code"
  st=$(cri_json inspect "$b")
  expect_eq "$(jget "$st" 'd["status"]["state"]')" CONTAINER_EXITED "b after StopContainer"
  expect_eq "$(jget "$st" 'd["status"].get("exit_code", 0)')" 137 "b's exit code"
  expect_contains "$(cat "$CRI_DIR/logs/$name/web.log")" " stdout F a-got-term" "a's CRI log"
  expect_rc 0 cri rm "$a"
  expect_rc 0 cri rm "$b"

  # -- StopPodSandbox, RemovePodSandbox, then nothing is left
  expect_rc 0 cri stopp "$pod"
  expect_rc 0 cri rmp "$pod"
  expect_no_cri_leftovers "$pod" "$netns" "$ip" "$pause $pa $pb" -- "$a" "$b" "$bad"
  # the pod's parent cgroup is the kubelet's to remove: it must be empty
  local d
  for d in /sys/fs/cgroup/*/"$(cg_parent)" /sys/fs/cgroup/unified/"$(cg_parent)"; do
    [ -d "$d" ] || continue
    rmdir "$d" || die "cannot remove $d: $(ls "$d")"
  done
}

cri_suite() {
  export SUITE_FILE=cri.sh
  t "CRI: pod (handler $RTLABEL) with two containers sharing net/ipc/uts, ExecSync, stats, stop, remove, nothing left" k_pod_lifecycle
}

# ------------------------------------------------ setup (run.sh, main shell)

cri_setup() {
  need_packages containerd containernetworking-plugins python3-venv iproute2
  export CRI_DIR=$WORK/cri
  export CRI_ADDR=$CRI_DIR/containerd.sock CRI_STATE=$CRI_DIR/state
  # names on the host carry the work dir's random suffix: two runs at once do
  # not share a bridge or a cgroup (the subnet may repeat: the bridge has no
  # address, so no host route)
  export CRI_TAG=${WORK##*.}
  export CRI_BRIDGE=cri-$CRI_TAG CRI_SUBNET=10.231.77.0/24 CRI_NET=cri-capsa-net
  export CRI_IMG=$IMG CRI_PAUSE=localhost/cri-pause:1
  export CRI_PY=$CRI_DIR/venv/bin/python CRI_GEN=$CRI_DIR/gen
  mkdir -p "$CRI_DIR/net.d" "$CRI_DIR/gen" "$CRI_DIR/logs"
  local t0=$SECONDS
  # the client's venv builds in the background while containerd starts
  echo "# cri: a venv with grpcio + grpcio-tools (PyPI), compiling cri.proto (in the background)"
  { python3 -m venv "$CRI_DIR/venv" &&
    "$CRI_DIR/venv/bin/pip" install -q --disable-pip-version-check grpcio grpcio-tools &&
    "$CRI_PY" -m grpc_tools.protoc -I "$CLIENTS_DIR/cri" --python_out="$CRI_GEN" \
      --grpc_python_out="$CRI_GEN" "$CLIENTS_DIR/cri/cri.proto"; } >"$WORK/logs/cri-venv.log" 2>&1 &
  local venv_pid=$!
  echo "# cri: building the pause image and the OCI archives ($((SECONDS - t0))s so far)"
  # the pause: busybox sh waiting forever, leaving on SIGTERM/SIGINT
  local p=$CRI_DIR/pause-rootfs
  mkdir -p "$p/bin"
  cp /bin/busybox "$p/bin/busybox"
  ln -s busybox "$p/bin/sh"
  ln -s busybox "$p/bin/sleep"
  printf '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 3600 & wait $!; done\n' >"$p/pause"
  chmod 0755 "$p/pause"
  tar -C "$p" -cf "$CRI_DIR/pause.tar" .
  pod_all import --change 'CMD ["/bin/sh", "/pause"]' "$CRI_DIR/pause.tar" "$CRI_PAUSE" >/dev/null 2>&1 &&
    pod_all save --format oci-archive -o "$CRI_DIR/pause-oci.tar" "$CRI_PAUSE" >/dev/null 2>&1 &&
    { [ -e "$WORK/busybox-oci.tar" ] ||
      pod_all save --format oci-archive -o "$WORK/busybox-oci.tar" "$IMG" >/dev/null 2>&1; } ||
    { echo "cri: podman import/save failed" >&2; exit 1; }

  # CNI: one bridge network (the loopback plugin is added by containerd itself)
  cat >"$CRI_DIR/net.d/10-$CRI_NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CRI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CRI_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$CRI_SUBNET"}]],
        "dataDir": "$CRI_DIR/ipam"
      }
    }
  ]
}
EOF
  # one runtime handler per runtime, named after its basename
  local rt handlers=""
  for rt in "${RUNTIME_PATHS[@]}"; do
    handlers+="
[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"$(basename "$rt")\"]
  runtime_type = \"io.containerd.runc.v2\"
[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"$(basename "$rt")\".options]
  BinaryName = \"$rt\"
  Root = \"$CRI_DIR/rt-root-$(basename "$rt")\""
  done
  # restrict_oom_score_adj: no CAP_SYS_RESOURCE here, the pause's -998 cannot
  # be set (runc fails too); disable_apparmor: no AppArmor on this host.
  cat >"$CRI_DIR/config.toml" <<EOF
version = 2
root = "$CRI_DIR/root"
state = "$CRI_STATE"
[grpc]
  address = "$CRI_ADDR"
[ttrpc]
  address = "$CRI_ADDR.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CRI_DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CRI_PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$CRI_DIR/net.d"
  max_conf_num = 1
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "$(basename "$SUBJECT")"
$handlers
EOF
  echo "# cri: starting containerd with its CRI plugin, importing the images ($((SECONDS - t0))s so far)"
  containerd --config "$CRI_DIR/config.toml" >"$WORK/logs/cri-containerd.log" 2>&1 &
  CRI_PID=$!
  local i
  for i in $(seq 100); do ctr -a "$CRI_ADDR" version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr -a "$CRI_ADDR" version >/dev/null || { echo "cri: containerd did not start:"; tail "$WORK/logs/cri-containerd.log"; exit 1; }
  for i in "$CRI_DIR/pause-oci.tar" "$WORK/busybox-oci.tar"; do
    ctr -a "$CRI_ADDR" -n k8s.io images import "$i" >/dev/null || { echo "cri: ctr images import $i failed" >&2; exit 1; }
  done
  wait "$venv_pid" || { echo "cri: venv/protoc failed:"; tail "$WORK/logs/cri-venv.log"; exit 1; }
  echo "# cri: venv ready ($((SECONDS - t0))s so far)"
  cri version >/dev/null || { echo "cri: containerd's CRI does not answer:"; tail "$WORK/logs/cri-containerd.log"; exit 1; }
  # the CRI sees both images (it learns of them from containerd's events) and
  # its network is ready (the conflist is loaded)
  local deadline=$((SECONDS + 30))
  until cri_ready; do
    [ $SECONDS -lt $deadline ] || { echo "cri: not ready after 30s:"; cri status; cri image-status "$CRI_IMG"; exit 1; }
    sleep 0.2
  done
  echo "# cri: ready ($((SECONDS - t0))s)"
}

cri_ready() {
  local img st
  for img in "$CRI_PAUSE" "$CRI_IMG"; do
    st=$(cri image-status "$img" 2>/dev/null) || return 1
    case "$st" in *repo_tags*) ;; *) return 1 ;; esac
  done
  st=$(cri status 2>/dev/null) || return 1
  [ "$(jget "$st" '[c["type"] for c in d["status"]["conditions"] if not c.get("status")]')" = "[]" ]
}

# (run.sh's cleanup) whatever a broken run left: pods, containerd, shims, the bridge
cri_cleanup() {
  local id rt i
  for id in $(cri pods 2>/dev/null | "$CRI_PY" -c 'import json,sys; [print(p["id"]) for p in json.load(sys.stdin).get("items", [])]' 2>/dev/null); do
    cri stopp "$id" >/dev/null 2>&1
    cri rmp "$id" >/dev/null 2>&1
  done
  kill "$CRI_PID" 2>/dev/null
  for i in $(seq 50); do kill -0 "$CRI_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$CRI_PID" 2>/dev/null
  for rt in "${RUNTIME_PATHS[@]}"; do
    for id in "$CRI_DIR/rt-root-$(basename "$rt")/k8s.io"/*; do
      [ ! -d "$id" ] || "$rt" --root "${id%/*}" delete --force "${id##*/}" >/dev/null 2>&1
    done
    rmdir /sys/fs/cgroup/*/"cri-$CRI_TAG-$(basename "$rt")"/* /sys/fs/cgroup/*/"cri-$CRI_TAG-$(basename "$rt")" 2>/dev/null
  done
  for id in $(pgrep -f "containerd-shim-runc-v2 .*-address $CRI_ADDR"); do kill -9 "$id" 2>/dev/null; done
  ip link del "$CRI_BRIDGE" 2>/dev/null
}
