# podman 4.3 bridge networking on the runtime under test (sourced by run.sh and
# by each test process; the podman helpers come from podman.sh). Environment
# from run.sh as for podman.sh, plus NET_CONF (a containers.conf with the
# [network] section below).
#
# podman 4.3 on Debian 12 uses the CNI backend (netavark is not packaged):
# Debian's containernetworking-plugins (bridge, host-local, portmap, firewall,
# tuning) with iptables. The network `capsa-net-test` (10.213.47.0/24, not
# podman's default 10.88.0.0/16) is created by the suite in a CNI config dir
# under the work dir; podman picks its bridge (cni-podmanN) and the test reads
# the name back. The runtime's part: joining the netns podman made by path
# (linux.namespaces[].path); the veth, the bridge, the address and the port
# mapping are CNI's. The suite removes the network and its bridge at the end.

. "$CLIENTS_DIR/podman.sh"

NET_NAME=capsa-net-test
NET_SUBNET=10.213.47.0/24
NET_PREFIX=10.213.47.

netpod() { CONTAINERS_CONF=$NET_CONF pod "$@"; }
ip_of() { netpod inspect --format "{{(index .NetworkSettings.Networks \"$NET_NAME\").IPAddress}}" "$1"; }
net_bridge() { netpod network inspect --format '{{.NetworkInterface}}' "$NET_NAME"; }

# net_run NAME ARGS...: podman run -d on the test network; the id in $ID.
net_run() {
  local name=$1; shift
  cleanup_later netpod rm -f -t 0 "$name"
  ID=$(netpod run -d --name "$name" "${U[@]}" --network "$NET_NAME" "$@")
  echo "+ run -d $name -> $ID" >&2
}

# httpd serving "hello from NAME" on port 80 of the container.
HTTPD=(sh -c 'mkdir -p /tmp/www && echo "hello from $HOSTNAME" >/tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www')

# The container's eth0 has the address podman reports, its veth peer on the
# host is a port of the network's bridge, and both go with the container.
n_veth_on_bridge() {
  local name=$RTLABEL-net-veth ip iflink br netns
  net_run "$name" "$IMG" sleep 1000
  ip=$(ip_of "$name")
  expect_contains "$ip" "$NET_PREFIX" "the container's address"
  expect_rc 0 netpod exec "$name" ip -o -4 addr show eth0
  expect_contains "$OUT" "inet $ip/24" "ip addr inside"
  iflink=$(netpod exec "$name" cat /sys/class/net/eth0/iflink)
  br=$(net_bridge)
  expect_rc 0 bridge link show
  local port
  port=$(echo "$OUT" | grep "^$iflink: " || true)
  expect_contains "$port" "master $br" "bridge link: the peer of eth0 (ifindex $iflink)"
  expect_rc 0 ip -o link show master "$br"
  expect_contains "$OUT" "$iflink: veth" "ip link show master $br"
  netns=$(netpod inspect --format '{{.NetworkSettings.SandboxKey}}' "$name")
  expect_rc 0 netpod rm -f -t 0 "$name"
  wait_for 10 sh -c "! ip -o link show master $br | grep -q '^$iflink: '"
  [ ! -e "$netns" ] || die "the container's netns $netns is still there"
  expect_no_leftovers "$ID"
}

# Two containers on the bridge: ping and HTTP by IP.
n_two_containers() {
  local a=$RTLABEL-net-a b=$RTLABEL-net-b ip_a
  net_run "$a" --hostname "$a" "$IMG" "${HTTPD[@]}"
  local id_a=$ID
  net_run "$b" "$IMG" sleep 1000
  local id_b=$ID
  ip_a=$(ip_of "$a")
  expect_contains "$ip_a" "$NET_PREFIX" "the address of $a"
  expect_rc 0 netpod exec "$b" ping -c 1 -W 5 "$ip_a"
  expect_contains "$OUT" "1 packets received" "ping from $b to $a"
  wait_for 10 netpod exec "$b" wget -q -O - "http://$ip_a/"
  expect_rc 0 netpod exec "$b" wget -q -O - "http://$ip_a/"
  expect_eq "$OUT" "hello from $a" "HTTP from $b to $a"
  expect_rc 0 netpod rm -f -t 0 "$a" "$b"
  expect_no_leftovers "$id_a"
  expect_no_leftovers "$id_b"
}

# -p 127.0.0.1:PORT:80 reaches httpd inside from the host (CNI's portmap).
n_published_port() {
  local name=$RTLABEL-net-port port
  case "$RTKIND" in oracle) port=18747 ;; *) port=18748 ;; esac
  net_run "$name" --hostname "$name" -p "127.0.0.1:$port:80" "$IMG" "${HTTPD[@]}"
  wait_for 10 busybox wget -q -O - "http://127.0.0.1:$port/"
  expect_rc 0 busybox wget -q -O - "http://127.0.0.1:$port/"
  expect_eq "$OUT" "hello from $name" "HTTP from the host through the published port"
  expect_rc 0 netpod rm -f -t 0 "$name"
  # the port is closed again (bash's /dev/tcp: busybox wget crashes on a refusal)
  expect_rc 1 timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
  expect_no_leftovers "$ID"
}

# Made in run.sh's shell, before the tests: the containers.conf with the CNI
# backend, and the network (also after a run that was interrupted).
network_setup() {
  need_packages containernetworking-plugins iptables iproute2
  export NET_CONF=$PODMAN_CONF_DIR/network.conf
  mkdir -p "$PODMAN_CONF_DIR/cni"
  cp "$CONTAINERS_CONF" "$NET_CONF"
  {
    echo '[network]'
    echo 'network_backend = "cni"'
    echo "network_config_dir = \"$PODMAN_CONF_DIR/cni\""
    echo 'cni_plugin_dirs = ["/usr/lib/cni"]'
  } >>"$NET_CONF"
  local pod_net=(podman --root "$PODMAN_ROOT" --runroot "$PODMAN_RUNROOT" --tmpdir "$PODMAN_TMPDIR"
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file)
  # a bridge left by an interrupted run still holds the gateway address
  local stale
  stale=$(ip -o -4 addr show | awk -v gw="${NET_PREFIX}1/24" '$4 == gw { print $2 }')
  [ -z "$stale" ] || ip link del "$stale"
  rm -rf "/var/lib/cni/networks/$NET_NAME"
  CONTAINERS_CONF=$NET_CONF "${pod_net[@]}" network exists "$NET_NAME" ||
    CONTAINERS_CONF=$NET_CONF "${pod_net[@]}" network create --disable-dns \
      --subnet "$NET_SUBNET" "$NET_NAME" >/dev/null ||
    { echo "podman network create $NET_NAME failed" >&2; exit 1; }
}

# The network goes, and the bridge CNI made for it (CNI leaves it).
n_remove_network() {
  local br
  br=$(net_bridge)
  expect_rc 0 netpod network rm "$NET_NAME"
  [ ! -e "/sys/class/net/$br" ] || ip link del "$br"
  rm -rf "/var/lib/cni/networks/$NET_NAME"
}

network_suite() {
  export SUITE_FILE=network.sh
  network_setup
  t "podman network: a veth on the bridge, gone with the container" n_veth_on_bridge
  t "podman network: two containers reach each other by IP (ping, HTTP)" n_two_containers
  t "podman network: a published port reaches a server inside from the host" n_published_port
  t "podman network: remove the network and its bridge" n_remove_network
}
