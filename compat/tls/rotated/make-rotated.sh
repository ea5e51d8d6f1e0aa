#!/usr/bin/env bash
# Writes a second CA and a server certificate from it (for 127.0.0.1 and
# localhost, 100 years): the "rotated" identity that the certificate reload
# tests (tests/tls.rs) swap in while paddock runs. The CA's key is not kept.
# The checked-in files came from this script.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out ca.pem -days 36500 \
    -subj "/O=paddock/CN=paddock-test-ca-rotated" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$tmp/server.key" -out "$tmp/server.csr" \
    -subj "/O=paddock/CN=paddock-test-server-rotated" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAserial "$tmp/ca.srl" -CAcreateserial -out "$tmp/server.crt" \
    -days 36500 -extfile "$tmp/ext" 2>/dev/null
cat "$tmp/server.key" "$tmp/server.crt" >server.pem
chmod 644 ca.pem server.pem
