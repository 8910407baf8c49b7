#!/usr/bin/env bash
# The README's test command: installs the real peers the tests drive, then runs every test.
# Postgres-backed tests run when AIRLOCK_TEST_POSTGRES_URL is set and say "skipped" otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

# OpenSSH client and server, and tmux (the terminal the shell tests type into), from Debian.
declare -A package=([ssh]=openssh-client [sftp]=openssh-client [ssh-keygen]=openssh-client
  [ssh-agent]=openssh-client [tmux]=tmux [unshare]=util-linux
  # tests/tls.rs: a test CA and certificates (openssl), HTTPS that verifies them (curl), and
  # nginx as the TLS reverse proxy of docs/tls.md.
  [openssl]=openssl [curl]=curl [nginx]=nginx-light
  # tests/install.rs: systemd-analyze verifies packaging/airlock.service (in a container the
  # package only adds files; scripts/package.sh signs with the openssl above).
  [systemd-analyze]=systemd)
missing=()
for tool in "${!package[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
# A real OpenSSH server is the upstream target in tests/upstream.rs.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
# Debian's Chromium and Node.js drive the reviewer web page in tests/web.rs.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The real asciinema (2.4.0, from PyPI) reads our recordings back in the tests; the same venv
# holds ssh-audit.
venv=target/asciinema-venv
if [ ! -x "$venv/bin/asciinema" ]; then
  echo "installing asciinema 2.4.0 into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check asciinema==2.4.0
fi
export AIRLOCK_TEST_ASCIINEMA="$PWD/$venv/bin/asciinema"
# ssh-audit (3.9.0, from PyPI) audits the gateway's SSH profile in tests/floods.rs.
if [ ! -x "$venv/bin/ssh-audit" ]; then
  echo "installing ssh-audit 3.9.0 into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check ssh-audit==3.9.0
fi
export AIRLOCK_TEST_SSH_AUDIT="$PWD/$venv/bin/ssh-audit"
# The official MCP Python SDK (2.3.0, from PyPI) is the client that drives `airlock mcp` in
# tests/mcp.rs.
if ! "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("mcp") == "2.3.0"' \
    >/dev/null 2>&1; then
  echo "installing the MCP Python SDK (mcp 2.3.0) into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check mcp==2.3.0
fi
# websockets (17.1, from PyPI) is the WSS client that verifies the reviewer listener's TLS
# certificate in tests/tls.rs.
if ! "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("websockets") == "17.1"' \
    >/dev/null 2>&1; then
  echo "installing websockets 17.1 into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check websockets==17.1
fi
# prometheus-client (0.26.0, from PyPI): its text and OpenMetrics parsers read /metrics back in
# tests/metrics.rs.
if ! "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("prometheus-client") == "0.26.0"' \
    >/dev/null 2>&1; then
  echo "installing prometheus-client 0.26.0 into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check prometheus-client==0.26.0
fi
export AIRLOCK_TEST_PYTHON="$PWD/$venv/bin/python"

# playwright-core (pinned in tests/web/package-lock.json) drives that Chromium; it never
# downloads a browser of its own.
if [ ! -d tests/web/node_modules/playwright-core ]; then
  echo "installing playwright-core into tests/web/node_modules"
  npm ci --prefix tests/web --no-audit --no-fund --loglevel=error
fi
# A real OpenID provider (oidc-provider) and playwright-core, both pinned in
# tests/sso/package-lock.json, for the single sign-on tests in tests/sso.rs.
if [ ! -d tests/sso/node_modules/oidc-provider ] || [ ! -d tests/sso/node_modules/playwright-core ]; then
  echo "installing oidc-provider and playwright-core into tests/sso/node_modules"
  npm ci --prefix tests/sso --no-audit --no-fund --loglevel=error
fi
export AIRLOCK_TEST_CHROMIUM=/usr/bin/chromium

cargo test --workspace --locked "$@"
