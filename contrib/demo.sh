#!/bin/sh
# `make run`: a local demo server with one account, in the foreground.
# Everything lives in ./run (certificates, config, users, spool, log).
set -eu
BIN=${1:-build/smtpgate}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
DIR=${SMTPGATE_DEMO_DIR:-$(pwd)/run}
SUB=${SMTPGATE_DEMO_SUBMISSION:-2587}
TLS=${SMTPGATE_DEMO_SMTPS:-2465}
USER=demo@example.test
PASS=demo-password

mkdir -p "$DIR"
cd "$DIR"
if [ ! -f ca.pem ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.pem -days 365 -subj "/CN=smtpgate demo CA" \
		-addext basicConstraints=critical,CA:TRUE 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > leaf.ext
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout key.pem -out leaf.csr -subj "/CN=localhost" 2>/dev/null
	openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out cert.pem -days 365 -extfile leaf.ext 2>/dev/null
fi
cat > smtpgate.conf <<CONF
[server]
hostname = localhost
spool = spool
log = stderr

[listen submission]
address = 127.0.0.1:$SUB
tls = starttls
auth = required

[listen submissions]
address = 127.0.0.1:$TLS
tls = implicit
auth = required

[tls]
cert = cert.pem
key = key.pem

[auth]
mechanisms = PLAIN LOGIN
backend = file:users

[domains]
local = example.test
CONF
if ! "$BIN" user verify "$USER" -f users >/dev/null 2>&1 <<PW
$PASS
PW
then
	"$BIN" user del "$USER" -f users >/dev/null 2>&1 || true
	printf '%s\n' "$PASS" | "$BIN" user add "$USER" -f users --password-stdin
fi
cat <<MSG
smtpgate demo server (config: $DIR/smtpgate.conf)
  submission (STARTTLS): 127.0.0.1:$SUB      submissions (implicit TLS): 127.0.0.1:$TLS
  account: $USER   password: $PASS   CA certificate: $DIR/ca.pem

Send a message through it from another terminal:
  swaks --server 127.0.0.1:$SUB --tls --auth PLAIN --auth-user $USER --auth-password $PASS \\
        --from $USER --to someone@example.net
  curl --crlf --ssl-reqd --cacert $DIR/ca.pem smtp://127.0.0.1:$SUB --user '$USER:$PASS' \\
        --mail-from $USER --mail-rcpt someone@example.net --upload-file - <<< 'Subject: hi'
Then see it queued:   $BIN queue list -c $DIR/smtpgate.conf
Stop with Ctrl-C.
MSG
exec "$BIN" serve -c smtpgate.conf
