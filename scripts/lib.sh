# Shared by the scripts: install Debian packages only when missing.
need_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "# installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } ||
    { echo "cannot install ${missing[*]}" >&2; exit 2; }
}

require_root() {
  [ "$(id -u)" = 0 ] || { echo "$0: containers need root: run it as root" >&2; exit 2; }
}
