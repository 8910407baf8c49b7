#!/usr/bin/env bash
# Build a signed release of Airlock:
#   dist/airlock-VERSION-ARCH-linux.tar.gz           the binaries, example configs, unit, docs
#   dist/airlock-VERSION-ARCH-linux.tar.gz.sha256    `sha256sum` line for the tarball
#   dist/airlock-VERSION-ARCH-linux.tar.gz.sha256.sig Ed25519 signature of the .sha256 file
#                                                     (64 bytes, base64, one line)
# Users check it with `airlock verify-release TARBALL --pubkey ed25519:…` (or `sha256sum -c`
# for the checksum alone).
#
# The signing key is an Ed25519 private key in PEM (PKCS#8), as `openssl genpkey -algorithm
# ed25519` writes it: --key FILE or AIRLOCK_SIGNING_KEY=FILE. Keep it offline; publish its
# public half (printed below as `ed25519:BASE64`) where users get it from you, not beside the
# tarball.
#
# Usage: scripts/package.sh [--key FILE] [--out DIR] [--binary FILE]
#        scripts/package.sh --generate-key FILE      (a new key, mode 600; prints its public key)
#   --binary FILE  package this binary instead of building `cargo build --profile dist`
#                  (the tests use the debug build to save time)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "package.sh: $*" >&2; exit 1; }
command -v openssl >/dev/null || die "openssl is needed to sign (apt-get install openssl)"

pubkey_of() { # PEM private key → ed25519:BASE64 (the last 32 bytes of the DER public key)
  openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | base64 -w0 | sed 's/^/ed25519:/'
}

key=${AIRLOCK_SIGNING_KEY:-}
out=dist
binary=
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key=${2:?--key FILE}; shift 2 ;;
    --out) out=${2:?--out DIR}; shift 2 ;;
    --binary) binary=${2:?--binary FILE}; shift 2 ;;
    --generate-key)
      file=${2:?--generate-key FILE}
      [ -e "$file" ] && die "$file exists; not overwriting a key"
      (umask 077 && openssl genpkey -algorithm ed25519 -out "$file")
      echo "signing key: $file"
      echo "public key: $(pubkey_of "$file")"
      exit 0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[ -n "$key" ] || die "no signing key: --key FILE or AIRLOCK_SIGNING_KEY=FILE (--generate-key FILE makes one)"
[ -r "$key" ] || die "signing key $key is not readable"
if [ "$(stat -c %a "$key")" != 600 ] && [ "$(stat -c %a "$key")" != 400 ]; then
  die "signing key $key is readable by others (mode $(stat -c %a "$key")); chmod 600 it"
fi

if [ -z "$binary" ]; then
  cargo build --locked --profile dist -p airlock-gateway --bin airlock --bin airlock-sandbox
  binary="${CARGO_TARGET_DIR:-target}/dist/airlock"
fi
[ -x "$binary" ] || die "$binary is not an executable"
# The small sandbox helper every local command starts through, built with the binary.
helper="$(dirname "$binary")/airlock-sandbox"
[ -x "$helper" ] || die "$helper is missing: it is built with airlock (cargo build -p airlock-gateway)"

version=$("$binary" --version | awk '{print $2}')
[ -n "$version" ] || die "$binary --version printed no version"
name="airlock-$version-$(uname -m)-linux"
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/docs"
install -m 0755 "$binary" "$root/airlock"
install -m 0755 "$helper" "$root/airlock-sandbox"
install -m 0644 config/airlock.example.toml "$root/airlock.example.toml"
install -m 0644 packaging/airlock.toml "$root/airlock.toml"
install -m 0644 packaging/airlock.service "$root/airlock.service"
install -m 0644 README.md "$root/README.md"
install -m 0644 docs/*.md "$root/docs/"

tarball="$out/$name.tar.gz"
# Reproducible: sorted names, fixed owner and times, no gzip timestamp.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - "$name" \
  | gzip -n -9 > "$tarball.tmp"
mv "$tarball.tmp" "$tarball"
(cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
openssl pkeyutl -sign -rawin -inkey "$key" -in "$tarball.sha256" \
  | base64 -w0 > "$tarball.sha256.sig"
echo >> "$tarball.sha256.sig"

echo "package:   $tarball"
echo "checksum:  $tarball.sha256"
echo "signature: $tarball.sha256.sig"
echo "public key: $(pubkey_of "$key")"
echo "verify:    airlock verify-release $tarball --pubkey $(pubkey_of "$key")"
