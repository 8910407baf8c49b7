#!/usr/bin/env bash
# The README's test command: installs the real peers the tests drive, then runs every test.
# Postgres-backed tests run when AIRLOCK_TEST_POSTGRES_URL is set and say "skipped" otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in ssh sftp ssh-keygen ssh-agent; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing openssh-client (missing: ${missing[*]})"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq openssh-client
fi

cargo test --workspace --locked "$@"
