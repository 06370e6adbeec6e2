#!/bin/sh
# Prepares the certificate of the tls-proxy service (docker-compose.yml, service tls-cert),
# before the proxy starts, in the directory OUT (the `tls` volume):
#   - a certificate supplied in IN (tls.crt, full chain first, and tls.key) is copied;
#   - otherwise a self-signed certificate (ECDSA P-256) for TLS_SERVER_NAMES is made once,
#     and made again only when it is within 30 days of its end or the names changed.
# The key is written mode 0600. A supplied key that does not match its certificate stops
# the deployment here, with a message, instead of at the proxy's first handshake.
set -eu
in=${TLS_IN:-/supplied}
out=${TLS_OUT:-/tls}
names=${TLS_SERVER_NAMES:-localhost,127.0.0.1}
days=${TLS_DAYS:-397}
umask 077

public_key() {
  # $1: x509 or pkey, $2: file
  if [ "$1" = x509 ]; then
    openssl x509 -in "$2" -noout -pubkey
  else
    openssl pkey -in "$2" -pubout
  fi
}

install_pair() {
  # $1: certificate, $2: key; replaced together, each by a rename
  cp "$1" "$out/.tls.crt.new"
  cp "$2" "$out/.tls.key.new"
  chmod 0644 "$out/.tls.crt.new"
  chmod 0600 "$out/.tls.key.new"
  mv -f "$out/.tls.key.new" "$out/tls.key"
  mv -f "$out/.tls.crt.new" "$out/tls.crt"
}

if [ -f "$in/tls.crt" ] || [ -f "$in/tls.key" ]; then
  if [ ! -s "$in/tls.crt" ] || [ ! -s "$in/tls.key" ]; then
    echo "make-cert: $in needs both tls.crt and tls.key" >&2
    exit 1
  fi
  if [ "$(public_key x509 "$in/tls.crt")" != "$(public_key pkey "$in/tls.key")" ]; then
    echo "make-cert: $in/tls.key is not the key of $in/tls.crt" >&2
    exit 1
  fi
  install_pair "$in/tls.crt" "$in/tls.key"
  rm -f "$out/self-signed"
  echo "make-cert: using the supplied certificate"
  openssl x509 -in "$out/tls.crt" -noout -subject -enddate
  exit 0
fi

if [ -s "$out/tls.crt" ] && [ -s "$out/tls.key" ] && [ "$(cat "$out/self-signed" 2>/dev/null)" = "$names" ] &&
  openssl x509 -in "$out/tls.crt" -noout -checkend 2592000 >/dev/null; then
  echo "make-cert: keeping the self-signed certificate for $names"
  exit 0
fi

# subjectAltName from the comma separated names: addresses as IP:, the rest as DNS:
san=""
first=""
for name in $(echo "$names" | tr ',' ' '); do
  case "$name" in
    *[!0-9.]* | "")
      case "$name" in
        *:*) entry="IP:$name" ;;
        *) entry="DNS:$name" ;;
      esac
      ;;
    *) entry="IP:$name" ;;
  esac
  san="${san:+$san,}$entry"
  first=${first:-$name}
done
if [ -z "$san" ]; then
  echo "make-cert: TLS_SERVER_NAMES is empty" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc \
  -keyout "$work/tls.key" -out "$work/tls.crt" -days "$days" -subj "/CN=$first" \
  -addext "subjectAltName=$san" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,digitalSignature,keyCertSign" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
install_pair "$work/tls.crt" "$work/tls.key"
printf '%s' "$names" >"$out/self-signed"
chmod 0644 "$out/self-signed"
echo "make-cert: made a self-signed certificate for $names; clients trust it with:"
echo "  docker compose cp tls-proxy:/etc/nginx/tls/tls.crt ehrgate-tls.crt"
openssl x509 -in "$out/tls.crt" -noout -fingerprint -sha256
