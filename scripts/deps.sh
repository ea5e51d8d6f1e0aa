#!/usr/bin/env bash
# Installs the Debian packages paddock needs, only when missing.
#   scripts/deps.sh build   - what building needs (libclang for RocksDB's bindings)
#   scripts/deps.sh test    - plus the real ZooKeeper clients the tests drive
set -euo pipefail

want=(libclang-dev clang)
if [[ "${1:-build}" == "test" ]]; then
  # krb5-kdc, krb5-admin-server: the throwaway realm of compat/kerberos.sh.
  want+=(zookeeper zookeeper-bin libcurator-recipes-java libcurator-framework-java libcurator-client-java python3-venv
         krb5-kdc krb5-admin-server)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3-venv may be satisfied by a non-Debian python that has venv built in.
if [[ " ${missing[*]} " == *" python3-venv "* ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null
  }
fi
