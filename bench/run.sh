#!/usr/bin/env bash
# Airlock next to OpenSSH on this machine: builds release, starts a real sshd and `airlock
# serve` on loopback with throwaway keys, runs the scenarios of docs/performance.md and prints
# a Markdown table. Arguments go to airlock-bench (`--quick` for a fast look, `--only 1,3 --runs 20`,
# `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi

cargo build --release --locked -p airlock-gateway -p airlock-bench
# 2,000 idle sessions need a descriptor each on both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec target/release/airlock-bench --airlock target/release/airlock "$@"
