#!/bin/sh
# bench/cluster_auth.sh: the AUTH latency a client sees with the passwd file, with the
# pgsql backend and with the shared limiter ([cluster] in Redis), in one run.
#
#   sh bench/cluster_auth.sh /path/to/smtpgate [N [ROUNDS]]     (N=300, ROUNDS=2)
#
# Starts one PostgreSQL 15 (initdb in a temporary folder, run as the postgres user, a
# table of credentials as in doc/pgsql.md) and one redis-server, then, one after the
# other and ROUNDS times in this order (interleaved, so that the machine's drift shows):
#   file     a single node, backend = file:users
#   pgsql    a single node, backend = pgsql:... with the same two credentials in the table
#   cluster  backend = file:users and [cluster] redis = redis://127.0.0.1:PORT
# each a fresh smtpgate on a free port of 127.0.0.1, measured by bench/cluster_auth.py
# (a Python client: N logins per kind, AUTH PLAIN and SCRAM-SHA-256 with a 1-iteration key
# and with the default key of `smtpgate user hash`, and N failed AUTH PLAIN), then stopped.
# The client is on 127.0.0.1, in the default [limits] allow list: no tarpit on a 535, but
# the failure is counted for the account, locally and (cluster) in Redis.
# Results: bench/out/cluster_auth/*.json and report.md (`cluster_auth.py report DIR`).
# Needs root (PostgreSQL runs as postgres, smtpgate as nobody), postgresql-15, redis-server.
# Everything started is stopped and its folder removed at the end, also on Ctrl-C.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

[ $# -ge 1 ] || bench_die "usage: cluster_auth.sh /path/to/smtpgate [N [ROUNDS]]"
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
n=${2:-300}
rounds=${3:-2}
[ -x "$bin" ] || bench_die "no smtpgate binary at $bin"
[ "$(id -u)" = 0 ] || bench_die "needs root (PostgreSQL runs as the postgres user)"
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/initdb" ] || bench_die "no PostgreSQL 15 at $pgbin (apt-get install postgresql-15)"
redis=$(command -v redis-server) || bench_die "no redis-server (apt-get install redis-server)"
out=${BENCH_OUT:-$here/out/cluster_auth}
mkdir -p "$out"
rm -f "$out"/*.json

base=$(mktemp -d /tmp/smtpgate-bench-cluster.XXXXXX)
pgdir=$(mktemp -d /tmp/smtpgate-bench-pg.XXXXXX)
pid=
redis_pid=
pg_up=0

stop_node() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=
}
cleanup() {
	set +e
	stop_node
	if [ -n "$redis_pid" ]; then
		kill -TERM "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	if [ "$pg_up" = 1 ]; then
		runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -w -m fast stop >/dev/null 2>&1
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		bench_log "kept $base $pgdir"
	else
		rm -rf "$base" "$pgdir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

bench_make_cert "$base"
chmod 711 "$base"
# two users: "cheap" with 1-iteration SCRAM keys (the hash is out of the figure),
# "dflt" with what `smtpgate user hash` makes by default
cheap=cheap@example.test
dflt=dflt@example.test
for u in cheap dflt; do
	od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$base/pw-$u"
	chmod 600 "$base/pw-$u"
done
cred_dflt=$("$bin" user hash --password-stdin <"$base/pw-dflt" | tail -n1)
cred_cheap=$(/usr/bin/python3 - "$base/pw-cheap" <<'EOP'
import base64, hashlib, hmac, os, sys
pw = open(sys.argv[1], "rb").read().strip()
salt = os.urandom(16)
sp = hashlib.pbkdf2_hmac("sha256", pw, salt, 1)
stored = hashlib.sha256(hmac.new(sp, b"Client Key", "sha256").digest()).digest()
server = hmac.new(sp, b"Server Key", "sha256").digest()
b = lambda x: base64.b64encode(x).decode()
print("{SCRAM-SHA-256}1,%s,%s,%s" % (b(salt), b(stored), b(server)))
EOP
)
printf '%s:%s\n%s:%s\n' "$cheap" "$cred_cheap" "$dflt" "$cred_dflt" >"$base/users"
chmod 600 "$base/users"
bench_log "default credential: $(echo "$cred_dflt" | cut -d, -f1)"

# PostgreSQL: its own cluster in $pgdir, on a free port, fsync off (as the tests)
chown postgres:postgres "$pgdir"
pgport=$(bench_free_port) || bench_die "no free port"
dbpw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$dbpw" >"$base/db-password"
chmod 600 "$base/db-password"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -U postgres --auth-local=trust \
	--auth-host=scram-sha-256 -E UTF8 >"$pgdir/initdb.log" 2>&1 || bench_die "initdb failed"
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -w -l "$pgdir/pg.log" start -o \
	"-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null ||
	bench_die "PostgreSQL did not start ($pgdir/pg.log)"
pg_up=1
runuser -u postgres -- "$pgbin/createdb" -h "$pgdir" -p "$pgport" mail
runuser -u postgres -- "$pgbin/psql" -h "$pgdir" -p "$pgport" -d mail -v ON_ERROR_STOP=1 -qAt \
	>/dev/null <<EOS
CREATE TABLE credentials (
    id         bigserial PRIMARY KEY,
    login      text NOT NULL,
    credential text NOT NULL,
    label      text,
    senders    text,
    locked     boolean NOT NULL DEFAULT false,
    expires    timestamptz,
    created    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credentials_login ON credentials (login);
CREATE ROLE smtpgate LOGIN PASSWORD '$dbpw';
GRANT SELECT ON credentials TO smtpgate;
INSERT INTO credentials (login, credential) VALUES ('$cheap', '$cred_cheap'), ('$dflt', '$cred_dflt');
EOS
query='SELECT login, credential, label, senders, locked, extract(epoch FROM expires) AS expires, extract(epoch FROM created) AS created FROM credentials WHERE login = $1 ORDER BY label NULLS FIRST, id'

redis_port=$(bench_free_port) || bench_die "no free port"
mkdir -p "$base/redis"
# persistence as a production Redis would have it (AOF, fsync every second)
"$redis" --port "$redis_port" --bind 127.0.0.1 --dir "$base/redis" --save "" \
	--appendonly yes --appendfsync everysec >"$base/redis/stdout.log" 2>&1 &
redis_pid=$!
bench_wait_port "$redis_port" 10 || bench_die "redis-server does not listen"

# start_node LABEL: writes the config of that variant, starts smtpgate, waits for it
# (each start of the cluster variant is another node name: a name held less than 30 s
# ago by another process is a clash, doc/cluster.md)
start_node() {
	label=$1
	d=$base/$label
	rm -rf "$d"
	mkdir -p "$d/spool"
	chmod 711 "$d"
	tries=0
	while :; do
		port=$(bench_free_port) || bench_die "no free port"
		write_conf "$label" "$d"
		"$bin" serve -c "$d/smtpgate.conf" --check >"$d/check.log" 2>&1 && break
		# the port may have been taken since (other tenants of the machine): another one
		tries=$((tries + 1))
		if [ $tries -ge 3 ] || ! grep -q 'already in use' "$d/check.log"; then
			cat "$d/check.log" >&2
			bench_die "serve --check rejected $d/smtpgate.conf"
		fi
	done
	"$bin" serve -c "$d/smtpgate.conf" >"$d/stdout.log" 2>"$d/stderr.log" &
	pid=$!
	bench_wait_port "$port" 20 || { cat "$d/stderr.log" >&2; bench_die "$label: not listening"; }
	if [ "$label" = cluster ]; then
		i=0
		until grep -q '"cluster".*"up"' "$d/smtpgate.log" 2>/dev/null; do
			[ $i -lt 100 ] || bench_die "cluster: no cluster up event in $d/smtpgate.log"
			sleep 0.1
			i=$((i + 1))
		done
	fi
}

# write_conf LABEL DIR: the configuration of that variant, listening on $port
write_conf() {
	label=$1
	d=$2
	backend="file:$base/users"
	extra=
	case $label in
	pgsql)
		backend="pgsql:host=127.0.0.1 port=$pgport dbname=mail user=smtpgate"
		extra="[sql]
query = $query
password_file = $base/db-password
timeout = 3s"
		;;
	cluster)
		extra="[cluster]
redis = redis://127.0.0.1:$redis_port
node = bench-r$r"
		;;
	esac
	cat >"$d/smtpgate.conf" <<EOC
; generated by bench/cluster_auth.sh ($label)
[server]
hostname = smtpgate.bench.test
spool = spool
threads = auto
log = smtpgate.log
user = nobody

[listen submission]
address = 127.0.0.1:$port
tls = starttls
auth = required
relay = authenticated

[tls]
cert = $base/cert.pem
key = $base/key.pem
min_version = 1.3

[auth]
mechanisms = PLAIN SCRAM-SHA-256
backend = $backend

[limits]
quota_messages_per_day = 0
quota_recipients_per_day = 0
connections = 10000

$extra
EOC
}

redis_failures() {
	redis-cli -p "$redis_port" --scan --pattern 'smtpgate:*' 2>/dev/null | wc -l
}

r=1
while [ $r -le "$rounds" ]; do
	for label in file pgsql cluster; do
		start_node "$label"
		bench_log "round $r: $label on 127.0.0.1:$port (pid $pid), load $(cut -d' ' -f1-3 /proc/loadavg)"
		/usr/bin/python3 "$here/cluster_auth.py" measure "$port" "$base/cert.pem" "$n" \
			"$out/r$r-$label.json" "$label" "$r" "$cheap" "$base/pw-cheap" "$dflt" "$base/pw-dflt"
		if grep -q '"code": *454' "$base/$label/smtpgate.log"; then
			bench_log "$label: the log has a temporary failure"
		fi
		stop_node
	done
	r=$((r + 1))
done
bench_log "Redis keys under smtpgate: after the run: $(redis_failures)"
redis-cli -p "$redis_port" --scan --pattern 'smtpgate:*' 2>/dev/null | sort | head -n 20 >"$out/redis-keys.txt"
/usr/bin/python3 "$here/cluster_auth.py" report "$out" | tee "$out/report.md"
