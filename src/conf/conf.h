/*
 * conf: the configuration file (DESIGN 5.2): a small INI dialect.
 *
 *   [section]  or  [section NAME]      key = value      ; comment   # comment
 *
 * Unknown sections and keys, bad values and missing required keys are errors
 * that name file:line. Relative paths are resolved against the folder of the
 * config file when loaded, so every path in struct conf is usable as is.
 * A struct conf is immutable once loaded; SIGHUP loads a new one.
 */
#ifndef SG_CONF_CONF_H
#define SG_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum conf_tls_mode {
	CONF_TLS_NONE,
	CONF_TLS_STARTTLS,
	CONF_TLS_IMPLICIT,
};

enum conf_auth_mode {
	CONF_AUTH_OFF,
	CONF_AUTH_OPTIONAL,
	CONF_AUTH_REQUIRED,
};

enum conf_relay_mode {
	CONF_RELAY_AUTHENTICATED, /* authenticated users may relay anywhere */
	CONF_RELAY_LOCAL, /* unauthenticated mail only to [domains] local */
};

struct conf_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct conf_listen {
	char *name;
	char *address; /* as written */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum conf_tls_mode tls;
	enum conf_auth_mode auth;
	enum conf_relay_mode relay;
	bool sender_binding; /* MAIL FROM and From: must belong to the login (default on) */
	bool proxy_protocol; /* a PROXY protocol header comes first (default no) */
	struct conf_cidr *proxy_from; /* who may send it; required with proxy_protocol */
	size_t nproxy_from;
	int line;
};

struct conf_cert {
	char *cert; /* chain file: leaf first, then intermediates */
	char *key;
	int line; /* of whichever of cert and key came first */
	int cert_line;
	int key_line;
};

/* What is wrong with a [tls] cert/key pair, as `serve` finds it when loading
 * and `audit` when checking: both word it with conf_cert_describe. */
enum conf_cert_problem {
	CONF_CERT_CERT_UNREADABLE, /* errnum says why */
	CONF_CERT_CERT_NO_PEM,
	CONF_CERT_KEY_UNREADABLE, /* errnum says why */
	CONF_CERT_KEY_NO_PEM,
	CONF_CERT_KEY_MISMATCH,
};

/* [admin] auth: which requests need the bearer token of token_file */
enum conf_admin_auth {
	CONF_ADMIN_AUTH_CHANGES, /* POST, DELETE, and GET of /quota and /bans (user data) */
	CONF_ADMIN_AUTH_ALL, /* every request, /metrics and /healthz included */
};

/* [admin] token_file: the token's bounds and the largest file read. */
#define CONF_ADMIN_TOKEN_MIN 32
#define CONF_ADMIN_TOKEN_MAX 512
#define CONF_ADMIN_TOKEN_FILE_MAX 4096

enum conf_route_kind {
	CONF_ROUTE_SMARTHOST, /* smarthost HOST:PORT */
	CONF_ROUTE_MX, /* mx: the recipient domain's MX hosts */
	CONF_ROUTE_LMTP, /* lmtp /path/socket or lmtp HOST:PORT */
};

enum conf_verify {
	CONF_VERIFY_PEER_HOST,
	CONF_VERIFY_PEER,
	CONF_VERIFY_NONE,
};

/* [relay] or [route DOMAIN] (conf_relay.c): where and how mail is delivered. */
struct conf_route {
	char *domain; /* lower case; NULL for [relay] */
	enum conf_route_kind kind;
	char *host, *port; /* smarthost, lmtp over TCP */
	char *unix_path; /* lmtp over a unix socket (resolved) */
	enum conf_tls_mode tls;
	enum conf_verify verify;
	bool tls_set, verify_set, auth_set; /* given in the file (else: environment, default) */
	char *ca; /* NULL: the system store */
	char *auth; /* upper-case mechanism; NULL: none */
	char *credentials; /* file, mode 0600 or stricter; NULL: none */
	unsigned retry_min, retry_max, expire; /* seconds */
	unsigned delay_warning; /* seconds in the queue before a delay DSN; 0: none */
	unsigned concurrency; /* connections per destination */
	unsigned token_ttl; /* seconds an XOAUTH2 command's token is reused */
	unsigned timeout; /* seconds per client step */
	/* mx routes (relay/route_mx.h) */
	char *resolver; /* ADDR[:PORT]; NULL: /etc/resolv.conf */
	char *dnssec_anchor; /* FILE or "none"; NULL: the system's root key */
	char *mx_port; /* tests and labs only; NULL: 25 */
	char *mta_sts_port; /* tests and labs only; NULL: 443 */
	bool no_dane, no_mta_sts;
	bool route_set;
	int line;
};

/* [dkim DOMAIN] (conf_dkim.c): how mail whose From: is in DOMAIN is signed. */
enum conf_dkim_alg {
	CONF_DKIM_RSA_SHA256, /* RFC 6376 3.3.1 */
	CONF_DKIM_ED25519_SHA256, /* RFC 8463 3 */
};

#define CONF_DKIM_RSA_MIN 1024 /* RFC 8301 3.2: signers MUST use at least 1024 */
#define CONF_DKIM_RSA_GOOD 2048 /* audit warns below this (RFC 8301 3.2: SHOULD) */

struct evp_pkey_st;

struct conf_dkim {
	char *domain; /* lower case */
	char *selector;
	char *key_path; /* resolved */
	struct evp_pkey_st *key; /* an OpenSSL EVP_PKEY, loaded once per load */
	enum conf_dkim_alg alg;
	int key_bits;
	char **headers; /* lower case; "from" first; no duplicates */
	size_t nheaders;
	int line, key_line;
};

/* conf_cluster.c: [cluster] redis as parsed: TCP host and port, or a
 * unix socket path; db is the SELECT number (0 by default). */
#define CONF_REDIS_HOST_MAX 255
struct conf_redis_url {
	char host[CONF_REDIS_HOST_MAX + 1]; /* "" for a unix socket */
	unsigned port;
	unsigned db;
	char path[108]; /* unix socket, "" for TCP */
};

/* Parses "redis://HOST:PORT[/DB]" (HOST a name, an IPv4 address or an
 * [IPv6] literal; PORT defaults to 6379 when ":PORT" is left out) or
 * "unix:PATH" (absolute). 0, or -1 with *errstr_r saying why. Pure. */
int conf_redis_url_parse(const char *s, struct conf_redis_url *u, const char **errstr_r)
    __attribute__((warn_unused_result));

struct conf {
	char *path; /* the file loaded */
	char *dir; /* its folder */

	/* [server] */
	char *hostname;
	char *spool;
	int threads; /* 0 = auto: one per core */
	char *log; /* "stderr" or a path */
	char *user; /* the user of the processes that read the network */

	/* [listen NAME] */
	struct conf_listen *listens;
	size_t nlistens;

	/* [tls] */
	struct conf_cert *certs;
	size_t ncerts;
	int tls_min_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
	char *tls_ciphers; /* TLS 1.2 cipher list; NULL = built-in default */

	/* [auth] */
	char **mechanisms; /* upper case, in offer order */
	size_t nmechanisms;
	char *backend; /* "file:PATH" with PATH resolved, "dovecot:SOCKET", "pgsql:CONNINFO" */
	int auth_workers; /* verification threads; 0 = auto */
	int auth_queue; /* pending verifications before 454 */

	/* [sql] (backend = pgsql:CONNINFO) */
	char *sql_query; /* one statement taking the login as $1 */
	char *sql_password_file; /* resolved; NULL: libpq's own (conninfo, PGPASSFILE) */
	unsigned sql_timeout; /* seconds a connection or a query may take */
	int sql_line; /* of the [sql] header; 0 without it */
	int sql_query_line;

	/* [domains] */
	char **local_domains; /* lower case */
	size_t nlocal_domains;

	/* [oauth] (RFC 7628 bearer tokens); oauth_jwks NULL = no OAuth */
	char *oauth_jwks; /* a file path (resolved) or an https:// URL */
	char *oauth_issuer; /* required "iss" */
	char *oauth_audience; /* required "aud" */
	char *oauth_user_claim; /* claim that must equal the user; default "email" */
	char *oauth_introspection; /* optional RFC 7662 endpoint (https:// URL) */
	char *oauth_jwks_ca; /* PEM bundle trusted for a jwks URL; NULL = system store */
	char *oauth_introspection_ca; /* the same for the introspection URL */
	char *oauth_introspection_client; /* client_id for HTTP Basic (RFC 7662 2.1) */
	char *oauth_introspection_secret_file; /* file holding the client secret */
	int oauth_line;

	/* [limits] */
	uint64_t message_size; /* SIZE, bytes */
	unsigned recipients; /* RCPT per transaction */
	unsigned errors; /* peer errors before the session is closed */
	unsigned timeout_command; /* seconds waiting for a command */
	unsigned timeout_data; /* seconds waiting for DATA/BDAT bytes */
	unsigned shutdown_grace; /* seconds sessions get on SIGTERM */
	/* abuse defences */
	unsigned connections; /* whole server */
	unsigned connections_per_ip;
	unsigned connection_rate_per_ip; /* new connections per minute */
	unsigned commands; /* commands per session */
	unsigned auth_failures_per_ip; /* then the IP is banned */
	unsigned auth_failures_per_net; /* then the network is banned */
	unsigned net_prefix_v4;
	unsigned net_prefix_v6;
	unsigned auth_failures_per_account; /* then new IPs for the account get 454 */
	unsigned ban_time; /* seconds; grows on repeat offences */
	bool ban_silent; /* banned: close without a reply */
	struct conf_cidr *allow; /* never banned */
	size_t nallow;
	unsigned quota_messages_per_day; /* per user; 0 = none */
	unsigned quota_recipients_per_day; /* distinct recipients per user per day; 0 = none */
	bool quota_reject; /* over quota: 550 5.7.1 instead of 452 4.7.1 */

	/* [relay] and [route DOMAIN]: relay NULL = nothing is delivered */
	struct conf_route *relay;
	struct conf_route **routes; /* [route DOMAIN] sections, in file order */
	size_t nroutes;

	/* [dkim DOMAIN] sections, in file order */
	struct conf_dkim **dkims;
	size_t ndkims;

	/* [admin]: /metrics, /healthz and the ban API (off without the section) */
	bool admin;
	char *admin_address;
	struct sockaddr_storage admin_addr;
	socklen_t admin_addrlen;
	char *admin_token_file; /* resolved; NULL: the API has no authentication */
	char *admin_token; /* its token, read when loaded; wiped by conf_free */
	enum conf_admin_auth admin_auth;
	int admin_line; /* of the [admin] header, for errors */
	int admin_token_line; /* of token_file */
	int admin_auth_line; /* of auth, 0 when not given */

	/* [cluster]: state shared with other nodes in Redis (off without the
	 * section, or without its redis key) */
	bool cluster;
	char *cluster_redis; /* as written: redis://HOST:PORT[/DB] or unix:PATH */
	struct conf_redis_url cluster_url; /* parsed */
	char *cluster_password_file; /* resolved; NULL: no AUTH */
	char *cluster_password; /* read when loaded; wiped by conf_free */
	char *cluster_prefix; /* key_prefix, "smtpgate:" */
	char *cluster_node; /* node, the host name when not given */
	int cluster_line; /* of the [cluster] header */
	int cluster_password_line;
};

/* Loads and validates path. On error returns NULL and writes
 * "file:line: message" to err. */
struct conf *conf_load(const char *path, char *err, size_t errlen);
/* Secrets a process of the server is not given (DESIGN 2.1): conf_load_without
 * does not read their files, and leaves their fields NULL (the [dkim] keys'
 * key, admin_token); everything else is checked as by conf_load. */
#define CONF_WITHOUT_DKIM_KEYS 0x1u /* the smtp process: it does not sign */
#define CONF_WITHOUT_ADMIN_TOKEN 0x2u /* the relay process: it has no admin API */
struct conf *conf_load_without(const char *path, unsigned without, char *err, size_t errlen);
void conf_free(struct conf *c);
/* Parses text (modified in place) as if read from file: for tests and fuzzing. */
struct conf *conf_parse_text(const char *file, char *text, char *err, size_t errlen);

/* The path of the passwd-file backend, or NULL if the backend is another. */
const char *conf_backend_file(const struct conf *c);
/* The socket of the dovecot backend, or NULL if the backend is another. */
const char *conf_backend_dovecot(const struct conf *c);
/* The conninfo of the pgsql backend (may hold a password: never log it),
 * or NULL if the backend is another. */
const char *conf_backend_pgsql(const struct conf *c);
/* conf_sql.c: 0 when the [sql] query q takes the login as $1 and no other
 * parameter ($1 in quotes or comments does not count) and is one
 * statement; else -1 and *errstr_r (static). */
int conf_sql_query_check(const char *q, const char **errstr_r) __attribute__((warn_unused_result));
bool conf_is_local_domain(const struct conf *c, const char *domain, size_t len);
/* The route for mail to domain: its [route DOMAIN], else [relay], else NULL. */
const struct conf_route *conf_route_for(const struct conf *c, const char *domain);

/* The [dkim DOMAIN] of domain[0..len) (case-insensitive), or NULL. */
const struct conf_dkim *conf_dkim_for(const struct conf *c, const char *domain, size_t len);

/* conf_admin.c: the token of an [admin] token_file's text (len bytes, may hold NUL): its
 * first line with surrounding white space trimmed, which must be an RFC 6750
 * b64token (letters, digits, "-._~+/", then "=" padding) of
 * CONF_ADMIN_TOKEN_MIN to CONF_ADMIN_TOKEN_MAX characters. 0 with a
 * malloc'd copy in *token_r (wipe it before free), or -1 with a static
 * message in *errstr_r (never the token). Pure: no I/O. */
int conf_admin_token_parse(const char *text, size_t len, char **token_r, const char **errstr_r)
    __attribute__((warn_unused_result));

/* conf_cert.c: "FILE:LINE: [tls] key KEY: ..." naming the config line of the
 * file at fault (the key's line for a mismatch); errnum is used by the
 * *_UNREADABLE problems. conf_cert_fix: what to do about it (static). */
void conf_cert_describe(const struct conf *c, const struct conf_cert *cc, enum conf_cert_problem pr,
    int errnum, char *out, size_t outlen);
const char *conf_cert_fix(enum conf_cert_problem pr);

/* Value parsers shared with later sections. 0 / -1. */
int conf_parse_duration(const char *s, unsigned *seconds_r) __attribute__((warn_unused_result));
int conf_parse_size(const char *s, uint64_t *bytes_r) __attribute__((warn_unused_result));
int conf_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len_r)
    __attribute__((warn_unused_result));
/* "192.0.2.0/24", "2001:db8::/32", or a bare address (full prefix). */
int conf_parse_cidr(const char *s, struct conf_cidr *r) __attribute__((warn_unused_result));
/* Whether the address (4 or 16 bytes of family) lies in the network. */
bool conf_cidr_contains(const struct conf_cidr *net, int family, const void *addr);

#endif
