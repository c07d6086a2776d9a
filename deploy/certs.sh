#!/bin/sh
# The webhook's TLS certificate without cert-manager (docs/install.md, step 3):
#
#   deploy/certs.sh                 make the files, then with kubectl: the Secret
#                                   fastmatch-webhook-tls and the webhook's caBundle
#   deploy/certs.sh --files-only    make the files in $CERTS_DIR and stop
#
# A CA of its own (kept in $CERTS_DIR, default ./fastmatch-certs, so that a renewal signs with
# the same CA and the caBundle stays right) signs a serving certificate for the Service's
# names. Run it again to renew (the certificate lasts CERT_DAYS, default 365): the webhook
# reloads the Secret's files when the kubelet updates them. Environment: NAMESPACE (default
# fastmatch-system), SERVICE (fastmatch-webhook), CERTS_DIR, CERT_DAYS.
set -eu
NAMESPACE=${NAMESPACE:-fastmatch-system}
SERVICE=${SERVICE:-fastmatch-webhook}
DIR=${CERTS_DIR:-./fastmatch-certs}
DAYS=${CERT_DAYS:-365}
SECRET=fastmatch-webhook-tls
WEBHOOK=fastmatch

case ${1:-} in
    "" | --files-only) ;;
    *) echo "usage: $0 [--files-only]" >&2; exit 2 ;;
esac
command -v openssl >/dev/null || { echo "certs.sh: needs openssl" >&2; exit 1; }
mkdir -p "$DIR"
umask 077

if [ ! -s "$DIR/ca.crt" ]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650 \
        -subj "/CN=fastmatch webhook CA" -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
fi
host=$SERVICE.$NAMESPACE.svc
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$host" \
    -keyout "$DIR/tls.key" -out "$DIR/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local,DNS:%s.%s\nextendedKeyUsage=serverAuth\n' \
    "$host" "$host" "$SERVICE" "$NAMESPACE" > "$DIR/tls.ext"
openssl x509 -req -in "$DIR/tls.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days "$DAYS" -extfile "$DIR/tls.ext" -out "$DIR/tls.crt" 2>/dev/null
rm -f "$DIR/tls.csr" "$DIR/tls.ext"
echo "certs.sh: $DIR/tls.crt for $host, signed by $DIR/ca.crt (keep ca.key private)"

[ "${1:-}" = --files-only ] && exit 0
command -v kubectl >/dev/null || { echo "certs.sh: needs kubectl to install them" >&2; exit 1; }
kubectl -n "$NAMESPACE" create secret tls "$SECRET" --cert="$DIR/tls.crt" --key="$DIR/tls.key" \
    --dry-run=client -o yaml | kubectl apply -f -
bundle=$(base64 < "$DIR/ca.crt" | tr -d '\n')
kubectl patch mutatingwebhookconfiguration "$WEBHOOK" --type=json \
    -p "[{\"op\": \"add\", \"path\": \"/webhooks/0/clientConfig/caBundle\", \"value\": \"$bundle\"}]"
echo "certs.sh: Secret $NAMESPACE/$SECRET written, caBundle of $WEBHOOK set"
