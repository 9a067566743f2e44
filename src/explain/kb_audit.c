/*
 * kb_audit: the knowledge base of `smtpgate audit` findings (see finding.h and
 * doc/findings.md). Ids are stable: scripts match on them.
 *
 * The rules themselves are in audit.c, one id per rule. Certificate ids carry
 * a "tls-" prefix so they stay distinct from the ids `probe` reports about a
 * remote server's certificate (cert-expired, cert-chain-incomplete, ...).
 */
#include "explain/finding.h"

const struct finding_kb finding_kb_audit[] = {
    /* [tls] ciphers */
    {"tls-ciphers-invalid", FINDING_ERROR,
        "[tls] ciphers names no cipher suite OpenSSL can use, so the server cannot set up TLS and "
        "refuses to start.",
        "Fix the cipher list (see `openssl ciphers -v 'LIST'`) or remove the key to use the "
        "built-in default ECDHE+AESGCM:ECDHE+CHACHA20."},
    {"tls-ciphers-insecure", FINDING_ERROR,
        "[tls] ciphers enables cipher suites that give no real protection: no encryption (NULL), "
        "no server authentication (anonymous DH/ECDH, open to a man in the middle), broken "
        "ciphers (RC4, DES, 3DES and other 64-bit block ciphers), MD5 MACs or export-grade keys.",
        "Remove those suites from [tls] ciphers, or remove the key to use the built-in default "
        "ECDHE+AESGCM:ECDHE+CHACHA20. Never lower the OpenSSL security level with @SECLEVEL=0."},
    {"tls-ciphers-weak", FINDING_WARNING,
        "[tls] ciphers enables TLS 1.2 suites that are not AEAD (CBC mode with HMAC, the source of "
        "padding-oracle attacks such as Lucky13) or that use RSA key exchange (no forward "
        "secrecy: whoever gets the private key later can decrypt recorded sessions).",
        "Keep only ECDHE suites with AES-GCM or ChaCha20-Poly1305, e.g. "
        "`ciphers = ECDHE+AESGCM:ECDHE+CHACHA20` (the default). Every current mail client "
        "supports them."},

    /* [listen NAME] */
    {"listen-auth-without-tls", FINDING_WARNING,
        "A listener with tls = none has auth enabled. smtpgate never takes a password in the "
        "clear: PLAIN, LOGIN and the -PLUS mechanisms are offered only inside TLS (538 5.7.11 "
        "otherwise). If none of [auth] mechanisms is left, AUTH is not offered: with auth = "
        "required every MAIL gets 530 5.7.0 and the listener accepts no mail; with auth = "
        "optional only unauthenticated mail. If SCRAM or CRAM-MD5 is left, logins work but "
        "the session, the user name and the mail travel unencrypted, and the client cannot "
        "tell the server from a man in the middle.",
        "For submission use tls = starttls (port 587) or tls = implicit (port 465). For an MX "
        "listener that takes mail for [domains] local from anyone, set auth = off and "
        "relay = local."},
    {"relay-local-no-domains", FINDING_WARNING,
        "A listener has relay = local but [domains] local lists no domain, so every "
        "unauthenticated RCPT gets 554 5.7.1 Relay access denied: the listener accepts no "
        "unauthenticated mail.",
        "List the domains this server receives mail for in [domains] local, or use "
        "relay = authenticated with auth = required if the listener is for submission only."},
    {"relay-unauthenticated-mx", FINDING_INFO,
        "A listener other hosts can reach has auth = off and relay = local: anyone may connect "
        "and send mail, without a login, to the domains of [domains] local. That is right for "
        "an MX (port 25) and wrong for a submission port. It is not an open relay: mail for "
        "other domains is refused with 554 5.7.1.",
        "Keep it if this listener is the domain's MX. Otherwise use auth = required with "
        "relay = authenticated, or bind it to a loopback address."},
    {"listen-proxy-from-wide", FINDING_WARNING,
        "A listener has proxy_protocol = yes and its proxy_from holds a network wider than an "
        "IPv4 /16 or an IPv6 /48. Every host in proxy_from may send a PROXY header naming any "
        "client address: it can dodge bans and rate limits, pin failures on someone else's "
        "address and forge the Received: header and the logs.",
        "List only the load balancers' own addresses (or their small subnet) in proxy_from, "
        "e.g. proxy_from = 10.0.0.10 10.0.0.11."},

    /* [auth] */
    {"auth-cram-md5-enabled", FINDING_WARNING,
        "[auth] mechanisms offers CRAM-MD5. Verifying it needs a secret equivalent to the "
        "plaintext password stored on the server ({CRAM-MD5} entries): whoever reads the passwd "
        "file can log in as every CRAM-MD5 user. SCRAM proves the password without that, and "
        "over TLS PLAIN lets the server keep only a slow hash.",
        "Remove CRAM-MD5 from [auth] mechanisms and offer SCRAM-SHA-256 (and PLAIN, LOGIN over "
        "TLS) instead; re-set passwords that were stored as {CRAM-MD5}."},
    {"auth-passwd-file-permissions", FINDING_ERROR,
        "The passwd file of [auth] backend = file: can be read or written by the group or by "
        "other users. Password hashes and SCRAM keys allow offline guessing and, for SCRAM, "
        "logging in as the user; a writable file lets anyone add a login.",
        "chmod 600 the passwd file and make it owned by the user smtpgate runs as; "
        "`smtpgate user` keeps that mode when it rewrites the file."},
    {"auth-pgsql-unreachable", FINDING_WARNING,
        "[auth] backend = pgsql: names a PostgreSQL server the audit could not connect to (or "
        "log in to) within [sql] timeout. The server starts anyway, but every AUTH answers "
        "454 4.7.0 (a temporary failure) until the database is reachable.",
        "Check that PostgreSQL runs and listens where the conninfo says (host, port or a "
        "socket folder), that pg_hba.conf admits this host and user, and the password "
        "([sql] password_file or PGPASSFILE). `psql 'CONNINFO'` as the same user shows the "
        "same error."},
    /* [cluster] */
    {"cluster-redis-unreachable", FINDING_WARNING,
        "[cluster] redis names a Redis server the audit could not connect to, or that gave "
        "no answer within 3 s (or refused the database number). The node starts anyway and "
        "works from its own state: AUTH failures, bans, known-good pairs and quotas are "
        "counted on this node alone, and it retries with a backoff (smtpgate_cluster_up 0 "
        "on /metrics) until Redis answers.",
        "Check that redis-server runs and listens where redis = says (`bind` and `port` in "
        "redis.conf, or the unix socket's path and mode), that no firewall is in the way and "
        "that the database number exists (`databases` in redis.conf). `redis-cli -h HOST "
        "-p PORT ping` from this host shows the same error."},
    {"cluster-redis-auth-failed", FINDING_ERROR,
        "Redis refused the password of [cluster] redis_password_file (WRONGPASS, invalid "
        "password), wants one and none is configured (NOAUTH), or has none and was sent one. "
        "The node would run on its own state only, retrying the same password for ever: the "
        "cluster would not share bans and counts with it.",
        "Put the password of `requirepass` (or of the default user's ACL) of the Redis "
        "server on the first line of redis_password_file (mode 0600), or remove the key if "
        "the server has no password. The password is never printed."},
    {"cluster-node-name-clash", FINDING_WARNING,
        "Another live smtpgate instance (another host, or another configuration on this "
        "host) holds this node's [cluster] node name in Redis, or two live nodes registered "
        "it lately (the set PREFIX clash). The nodes still share their state, but their "
        "`cluster` events, logs and registrations cannot be told apart, and each overwrites "
        "the other's registration.",
        "Give every node its own name: [cluster] node = mx1, mx2, ... (the default is the "
        "host name, so two nodes on one host need it set). The evidence names the host, "
        "pid and configuration of the other holder."},
    {"cluster-prefix-not-shared", FINDING_WARNING,
        "No node is registered in Redis under this node's [cluster] key_prefix, while "
        "smtpgate nodes are registered under another prefix in the same database: most "
        "likely a typo. Nodes with different prefixes share nothing (neither counts, bans, "
        "quotas nor ticket keys): an attacker gets the guesses of each group. (The first "
        "node of a second cluster that shares this Redis database on purpose, under a prefix "
        "of its own, is reported too until it runs.)",
        "Use the same key_prefix on every node of a cluster (the default smtpgate: if none "
        "is set anywhere). Give another cluster sharing the database its own prefix on "
        "purpose, or better its own database (redis://HOST:PORT/DB)."},
    {"cluster-proxy-from-missing", FINDING_WARNING,
        "This node refused connections on a proxy_protocol listener in the last 24 hours "
        "because the peer address is not in that listener's proxy_from (and is still not). "
        "If that peer is the load balancer (HAProxy connecting from an address of its own: "
        "another interface, a second balancer, an IPv6 address, a NAT in between), every "
        "connection it sends to this node is closed before the greeting. The nodes note such "
        "peers in Redis (PREFIX proxy:NODE); without [cluster] only the proxy_reject "
        "events of the log show them.",
        "Add the balancers' source addresses to proxy_from of that listener (the address "
        "HAProxy connects from: `source` in haproxy.cfg, or the route's source address). If "
        "the peer is not a balancer, the refusal is right: firewall the node's port so only "
        "the balancers reach it."},
    {"auth-pgsql-query-invalid", FINDING_ERROR,
        "PostgreSQL refuses to prepare [sql] query (a syntax error, a table or column that "
        "does not exist, a missing privilege), so every AUTH answers 454 4.7.0.",
        "Run the query in psql with PREPARE q(text) AS ...; EXECUTE q('user@example.org') as "
        "the conninfo's user, and fix it or GRANT SELECT on the table (doc/pgsql.md)."},
    {"auth-pgsql-no-credential-column", FINDING_ERROR,
        "[sql] query returns no column named credential (or two columns of one meaning), so no "
        "row can be read as a credential and every AUTH answers 454 4.7.0.",
        "Name the column that holds the {SCHEME}... string credential (SELECT password AS "
        "credential, ...); optional columns are login, label, senders, locked, expires, "
        "created and scram1 (doc/pgsql.md)."},
    {"auth-pgsql-password-in-config", FINDING_WARNING,
        "The conninfo of [auth] backend = pgsql: holds the database password, so it is in the "
        "configuration file, which is read by more tools and people than a secret should be "
        "and shows up in backups and diffs.",
        "Move the password to a file only the server can read and name it in [sql] "
        "password_file (or use PGPASSFILE / ~/.pgpass, or peer or certificate "
        "authentication over a unix socket)."},
    {"oauth-jwks-file-writable", FINDING_ERROR,
        "The [oauth] jwks file, which holds the public keys that verify OAuth bearer tokens, can "
        "be written by every user of the machine: whoever adds a key there can mint tokens "
        "that log in as anyone.",
        "chmod o-w (e.g. 644) the JWKS file and the folders above it, owned by root or the "
        "smtpgate user."},

    /* [limits] on listeners other hosts can reach */
    {"limits-timeout-too-long", FINDING_WARNING,
        "[limits] timeout_command (over 10 minutes) or timeout_data (over 1 hour) is long, and a "
        "listener is reachable from other hosts: idle or deliberately slow clients keep "
        "connections and memory for that long, which makes it cheap to exhaust the server.",
        "Use timeout_command = 5m (RFC 5321 4.5.3.2.7) and timeout_data = 10m, the defaults."},
    {"limits-message-size-too-large", FINDING_WARNING,
        "[limits] message_size is above 100M and a listener is reachable from other hosts: one "
        "client can fill the spool's disk with a few messages, and most receiving servers "
        "refuse such messages anyway (typical limits are 25M to 50M).",
        "Lower message_size (default 25M); share large files by link instead."},
    {"limits-recipients-too-many", FINDING_WARNING,
        "[limits] recipients allows more than 1000 RCPT per message on a listener other hosts "
        "can reach: a stolen login can send spam to many addresses with each message.",
        "Use the default of 100 (RFC 5321 4.5.3.1.8 requires at least 100), or a few hundred "
        "for mailing-list senders."},
    {"limits-loopback-bannable", FINDING_WARNING,
        "[limits] allow does not cover the loopback addresses, so programs on this host that "
        "submit over 127.0.0.1 or ::1 (webmail, monitoring, cron jobs) can be banned by their own "
        "failed logins, and then every local program is locked out at once.",
        "Keep 127.0.0.0/8 and ::1 in [limits] allow (the default) unless local programs must be "
        "throttled like remote clients."},
    {"limits-own-address-bannable", FINDING_WARNING,
        "One of the server's own addresses is not in [limits] allow. A program on this host that "
        "connects through the server's public name comes from that address, and its failed "
        "logins would ban the address: the host would lock itself out. (smtpgate has no PROXY "
        "protocol support: behind a TCP proxy or load balancer every client has the proxy's "
        "address, which must then be allowed, at the price of no per-client bans.)",
        "Add the listed addresses to [limits] allow, e.g. allow = 127.0.0.0/8 ::1 203.0.113.25. "
        "A listener on a wildcard address (*:587) answers on all the host's addresses: list the "
        "public ones in allow too."},
    {"limits-errors-too-many", FINDING_WARNING,
        "[limits] errors allows more than 50 failed commands before a session is closed, on a "
        "listener other hosts can reach: password guessing and address harvesting get many "
        "tries per connection.",
        "Use the default of 10."},

    /* [tls] cert / key */
    {"tls-cert-unreadable", FINDING_ERROR,
        "A [tls] cert or key file cannot be read or holds no PEM certificate or private key, so "
        "the server cannot load it and refuses to start.",
        "Check the path (relative paths are relative to the config file's folder), that the file "
        "is PEM, and that the user smtpgate runs as may read it."},
    {"tls-cert-expired", FINDING_ERROR,
        "A certificate in a [tls] cert file has expired: clients that verify certificates "
        "refuse to connect (\"certificate has expired\") and most fall back to not sending.",
        "Renew the certificate (e.g. with your ACME client), put the new chain in the cert file "
        "and send smtpgate SIGHUP."},
    {"tls-cert-not-yet-valid", FINDING_ERROR,
        "A certificate in a [tls] cert file is not valid yet (its notBefore is in the future): "
        "clients refuse it. Often the machine's clock is wrong.",
        "Check the system clock (NTP); otherwise wait or reissue the certificate."},
    {"tls-cert-expiring-soon", FINDING_WARNING,
        "A certificate in a [tls] cert file expires within 30 days; after that clients refuse "
        "to connect.",
        "Renew it now and send smtpgate SIGHUP; automate renewal (ACME) if you can."},
    {"tls-cert-key-mismatch", FINDING_ERROR,
        "The private key of a [tls] cert/key pair does not belong to the first certificate of "
        "the cert file, so no handshake can succeed and the server refuses to start. Often the "
        "key of an older certificate, or a chain file with the leaf not first.",
        "Pair each cert with its own key, in order (the n-th key goes with the n-th cert), and "
        "put the server's own certificate first in the chain file. Compare "
        "`openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`."},
    {"tls-cert-chain-incomplete", FINDING_ERROR,
        "The cert file holds the server's certificate but not the intermediate CA certificate "
        "that issued it (found beside the file, or named by the certificate itself as public "
        "CAs' certificates do). Clients only have root CAs, so they cannot verify the server "
        "(\"unable to get local issuer certificate\"). A certificate issued directly by a root "
        "is not reported: servers need not send the root.",
        "Use the full chain file your CA gives you (with ACME: fullchain.pem, not cert.pem): the "
        "server's certificate first, then the intermediates; the root is not needed."},
    {"tls-cert-issuer-unknown", FINDING_INFO,
        "The CA that issued the server's certificate is not in the cert file, not in a PEM file "
        "beside it and not among this machine's trusted CAs, so the audit cannot tell a private "
        "root (clients configured to trust it need nothing more) from an intermediate (which "
        "the cert file must hold).",
        "Nothing, if it is your own root CA and your clients trust it. If it is an intermediate, "
        "append it to the cert file after the server's certificate. Check with `openssl verify "
        "-CAfile ROOT -untrusted CERTFILE CERTFILE`."},
    {"tls-cert-self-signed", FINDING_WARNING,
        "The server's certificate is self-signed: clients that verify certificates refuse it, "
        "and clients that do not verify cannot tell a man in the middle from the server.",
        "Get a certificate from a public CA (e.g. Let's Encrypt via ACME) for [server] "
        "hostname; keep self-signed certificates for tests or for clients you configure to "
        "trust exactly this certificate."},
    {"tls-cert-name-mismatch", FINDING_WARNING,
        "None of the [tls] certificates is valid for [server] hostname, the name smtpgate "
        "announces and clients are usually configured with: clients that check names refuse "
        "the connection (\"hostname mismatch\").",
        "Get a certificate whose subjectAltName includes [server] hostname, or set hostname to "
        "the name the certificate is for."},
    {"tls-key-readable-by-others", FINDING_WARNING,
        "A [tls] private key file is readable by every user of the machine: anyone who copies it "
        "can impersonate the server (and, with RSA key exchange, decrypt recorded sessions).",
        "chmod 600 (or 640 with a dedicated group such as ssl-cert) the key file."},

    /* [server] spool and log */
    {"spool-not-writable", FINDING_WARNING,
        "The spool folder is not writable for the user running the audit, or it does not exist "
        "and its parent folder is not writable, so it cannot be created. If the server runs as "
        "this user it refuses to start (or answers 451 4.3.0 to every message).",
        "Create the spool folder owned by the user smtpgate runs as, mode 700 "
        "(`install -d -m 700 -o USER SPOOL`), or fix [server] spool."},
    {"spool-permissions-open", FINDING_WARNING,
        "The spool folder can be accessed by its group or by other users: queued messages "
        "(private mail) may be read, and files changed or removed, by other accounts.",
        "chmod 700 the spool folder; smtpgate creates it that way."},
    {"spool-owner-mismatch", FINDING_WARNING,
        "The spool folder is not owned by the user running the audit. If smtpgate runs as this "
        "user it may not be able to write, rename or fsync in the spool; if it runs as the owner, "
        "ignore this.",
        "Run smtpgate (and this audit) as the spool's owner, or chown the spool folder to the "
        "user smtpgate runs as."},
    /* [server] user: privilege separation (server/parent.h) */
    {"server-user-missing", FINDING_ERROR,
        "Started as root, smtpgate runs the process that reads the network as [server] user "
        "(default smtpgate), and that user does not exist: serve refuses to start.",
        "Create it: useradd --system --home-dir /var/spool/smtpgate --shell /usr/sbin/nologin "
        "smtpgate (or name an existing unprivileged user in [server] user)."},
    {"server-user-root", FINDING_WARNING,
        "[server] user is root: the process that parses TLS and SMTP from anyone keeps every "
        "privilege, so one memory-safety bug gives an attacker the machine.",
        "Set [server] user to an unprivileged user of its own (useradd --system ... smtpgate)."},
    {"server-not-root", FINDING_INFO,
        "The audit runs as a user other than root. Started as that user, serve runs all its "
        "processes as it (no privilege to drop), and [server] user is not used; files it must "
        "read (keys, passwd file) must then be readable by that user.",
        "Nothing to do if smtpgate is meant to run as this user; start it as root (e.g. from "
        "systemd) to have the network-facing process run as [server] user."},
    {"secret-readable-by-server-user", FINDING_ERROR,
        "A secret file can be read by [server] user, the user of the process that reads the "
        "network. smtpgate hands that process what it needs from root, so a compromised smtp "
        "process could read this file only because its permissions allow it.",
        "chown root and chmod 600 the file (or 640 with a group [server] user is not in), and "
        "keep it in a folder of root's."},
    {"log-file-world-readable", FINDING_INFO,
        "The [server] log file is readable by every user of the machine. It holds no passwords, "
        "but it does hold user names, client addresses and the senders and recipients of mail.",
        "chmod 640 (or 600) the log file, with a group for the people who read the logs."},
    {"log-file-not-writable", FINDING_WARNING,
        "The [server] log file cannot be opened for writing by the user running the audit (or it "
        "does not exist and its folder is not writable). If the server runs as this user it "
        "refuses to start.",
        "Fix the permissions of the log file or its folder, or use log = stderr under a "
        "service manager that keeps stderr."},
    {"relay-verify-none", FINDING_WARNING,
        "A [relay] or [route] section delivers over TLS with verify = none: anyone who can "
        "intercept the connection can pose as the next hop, read the mail and, with auth set, "
        "take the relay credentials.",
        "Use verify = peer+host (the default), with ca = FILE for a private CA; verify = peer "
        "if the certificate's name cannot match the configured host."},

    /* [admin] */
    {"admin-unauthenticated", FINDING_WARNING,
        "The [admin] HTTP API has no token_file, so it has no authentication: every user of "
        "the machine (every program that can reach the address, if it is not loopback) can "
        "lift bans (DELETE /bans), end sending-quota holds of hijacked accounts (POST "
        "/quota/unlock), ban any address, and read the banned addresses and held user names. "
        "It is an error when [admin] address is not a loopback address: then other hosts can "
        "too.",
        "Create a token file beside the config file, owned by the user smtpgate runs as and "
        "readable only by it (`umask 077; openssl rand -hex 32 > admin.token`), set "
        "`token_file = admin.token` in [admin] and reload (SIGHUP); `smtpgate ban` and "
        "`smtpgate user unlock -c` send the token themselves. Keep the address on loopback: "
        "the API is plain HTTP."},

    /* [dkim DOMAIN] */
    {"dkim-key-short", FINDING_WARNING,
        "A [dkim DOMAIN] signs with an RSA key shorter than 2048 bits. RFC 8301 asks signers "
        "for at least 2048; 1024-bit RSA is within reach of a well-funded attacker, and some "
        "verifiers already treat such signatures as weak.",
        "Make a new key (`umask 077; openssl genpkey -algorithm RSA -pkeyopt "
        "rsa_keygen_bits:2048 -out NEW.pem`), publish its record under a new selector "
        "(`openssl pkey -in NEW.pem -pubout -outform DER | base64 -w0` gives p=), wait for "
        "it to be visible (`smtpgate dns DOMAIN --selector NEW`), then set selector and key "
        "and reload (SIGHUP). Keep the old record published for a few days for mail in "
        "flight."},

    {NULL, FINDING_INFO, NULL, NULL},
};
