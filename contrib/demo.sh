#!/bin/sh
# `make run`: a local demo server with one account, in the foreground.
# Everything lives in ./run (certificates, config, users, spool, log).
# The server logs to run/smtpgate.log so that the banner, printed once the
# server listens, is the last thing on the terminal. run/local.conf, if
# present, is appended to the generated configuration (e.g. a [relay]).
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
chmod 600 ca.key key.pem
# Started as root, the process that reads the network runs as an
# unprivileged user: nobody here (a real install has a user of its own,
# smtpgate); root only where nobody cannot reach this folder.
RUNAS=
if [ "$(id -u)" = 0 ]; then
	RUNAS=nobody
	runuser -u nobody -- test -x "$DIR" 2>/dev/null || RUNAS=root
	RUNAS="user = $RUNAS"
fi
cat > smtpgate.conf <<CONF
[server]
hostname = localhost
spool = spool
log = smtpgate.log
$RUNAS

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
if [ -f local.conf ]; then
	printf '\n; from local.conf\n' >> smtpgate.conf
	cat local.conf >> smtpgate.conf
fi
if ! "$BIN" user verify "$USER" -f users >/dev/null 2>&1 <<PW
$PASS
PW
then
	"$BIN" user del "$USER" -f users >/dev/null 2>&1 || true
	printf '%s\n' "$PASS" | "$BIN" user add "$USER" -f users --password-stdin >/dev/null
fi

# The banner and what it says about delivery.
banner() {
	if grep -q '^\[relay\]' smtpgate.conf; then
		DELIVERY="Mail is delivered by the [relay] of $DIR/local.conf."
	else
		DELIVERY="Mail is queued, NOT delivered: this demo has no [relay], so what it accepts
stays in its spool. To deliver it, put a [relay] section in $DIR/local.conf
(appended to the configuration at each start), e.g.
    [relay]
    route = smarthost smtp.example.net:587
    auth = PLAIN
    credentials = relay.secret      ; in $DIR, mode 0600, one line: USER PASSWORD
then stop this server and run make run again (doc/smtpgate.conf.5.md, \"[relay]\")."
	fi
	cat <<MSG

smtpgate demo server is running (config: $DIR/smtpgate.conf)
  submission (STARTTLS): 127.0.0.1:$SUB      submissions (implicit TLS): 127.0.0.1:$TLS
  account: $USER   password: $PASS   CA certificate: $DIR/ca.pem

Send a message through it from another terminal:
  swaks --server 127.0.0.1:$SUB --tls --auth PLAIN --auth-user $USER --auth-password $PASS \\
        --from $USER --to someone@example.net
  curl --crlf --ssl-reqd --cacert $DIR/ca.pem smtp://127.0.0.1:$SUB --user '$USER:$PASS' \\
        --mail-from $USER --mail-rcpt someone@example.net --upload-file - <<< 'Subject: hi'
See the queue:   $BIN queue list -c $DIR/smtpgate.conf
$DELIVERY
Log (JSON lines): tail -f $DIR/smtpgate.log
Stop with Ctrl-C.
MSG
}

# alive PID: the process exists and is not a zombie (kill -0 passes for one)
alive() {
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# The server takes this shell's place (exec): Ctrl-C and SIGTERM reach it as
# they reach any foreground command, and its exit status is the script's. A
# helper in the background prints the banner once the server listens (its
# start event), so that the banner comes last, or says it did not start.
# a fresh log each run, readable by its owner only (it names users and clients)
(umask 077 && : > smtpgate.log)
chmod 600 smtpgate.log
server=$$
(
	i=0
	while ! grep -q '"event":"start"' smtpgate.log; do
		if ! alive $server || [ $i -ge 600 ]; then
			echo "smtpgate demo: the server did not start (its errors are above; log: $DIR/smtpgate.log)" >&2
			exit 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	banner
) &
exec "$BIN" serve -c smtpgate.conf
