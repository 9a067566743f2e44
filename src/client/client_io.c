/*
 * client_io: connecting, the TLS handshake and bounded reads and writes of
 * the outbound client (see client.h). Everything blocks on poll(2) with a
 * deadline; the socket itself is non-blocking so no call can outlive it.
 *
 * TLS: one SSL per connection over the socket (SSL_set_fd). Verification
 * always runs with a callback that records each error and its depth; the
 * callback lets the handshake go on when the mode is none or soft (the
 * probe reports the errors), and stops it otherwise. The peer's chain as
 * sent, the verified chain's length, version, cipher and the channel
 * binding data (-PLUS) are kept in struct client_tls_info.
 */
#include "client/client.h"
#include "client/client_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

long long
client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
client_set_error(struct client *c, enum client_err kind, int err, const char *fmt, ...)
{
	va_list ap;

	c->err.kind = kind;
	c->err.sys_errno = err;
	va_start(ap, fmt);
	vsnprintf(c->err.detail, sizeof(c->err.detail), fmt, ap);
	va_end(ap);
	client_transcript_addf(c->conf.transcript, CLIENT_T_INFO, "%s", c->err.detail);
}

/* Waits for events on the socket until the deadline. 1 ready, 0 timeout. */
static int
client_wait(struct client *c, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = events};
		long long left = deadline - client_now_ms();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (r > 0)
			return 1;
		if (r == 0)
			continue; /* re-check the deadline */
		if (errno != EINTR)
			return 1; /* let the I/O call report the error */
	}
}

static void
client_format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else if (sa->sa_family == AF_UNIX) {
		/* a long socket path is cut: this is for messages only */
		if (snprintf(out, outlen, "%s", ((const struct sockaddr_un *)sa)->sun_path) < 0)
			snprintf(out, outlen, "?");
	} else {
		snprintf(out, outlen, "?");
	}
}

int
client_connect_addr(struct client *c, const struct sockaddr *sa, socklen_t salen)
{
	long long deadline = client_now_ms() + c->timeout_ms;
	int fd, err = 0, one = 1;
	socklen_t errlen = sizeof(err);
	char addr[INET6_ADDRSTRLEN + 16];

	client_close(c);
	client_format_addr(sa, addr, sizeof(addr));
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		client_set_error(c, CLIENT_E_LOCAL, errno, "socket: %s", strerror(errno));
		return -1;
	}
	c->fd = fd;
	client_transcript_addf(c->conf.transcript, CLIENT_T_INFO, "connecting to %s", addr);
	if (connect(fd, sa, salen) == -1) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		if (!client_wait(c, POLLOUT, deadline)) {
			client_set_error(c, CLIENT_E_CONNECT_TIMEOUT, ETIMEDOUT,
			    "connect to %s: no answer within %d ms", addr, c->timeout_ms);
			client_close(c);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == -1)
			err = errno;
		if (err != 0)
			goto fail;
	}
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(c->peer, sizeof(c->peer), "%s", addr);
	client_transcript_addf(c->conf.transcript, CLIENT_T_INFO, "connected to %s", addr);
	return 0;
fail:
	client_set_error(c,
	    err == ECONNREFUSED     ? CLIENT_E_REFUSED
	        : err == ETIMEDOUT  ? CLIENT_E_CONNECT_TIMEOUT
	        : err == ECONNRESET ? CLIENT_E_RESET
	                            : CLIENT_E_UNREACHABLE,
	    err, "connect to %s: %s", addr, strerror(err));
	client_close(c);
	return -1;
}

int
client_connect(struct client *c)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	if (c->conf.unix_path != NULL) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		if (strlen(c->conf.unix_path) >= sizeof(sun.sun_path)) {
			client_set_error(c, CLIENT_E_LOCAL, 0, "socket path too long");
			return -1;
		}
		memcpy(sun.sun_path, c->conf.unix_path, strlen(c->conf.unix_path) + 1);
		return client_connect_addr(c, (struct sockaddr *)&sun, sizeof(sun));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(c->conf.host, c->conf.port, &hints, &res);
	if (rc != 0) {
		client_set_error(c, CLIENT_E_RESOLVE, 0, "cannot resolve %s: %s", c->conf.host,
		    gai_strerror(rc));
		return -1;
	}
	rc = -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = client_connect_addr(c, ai->ai_addr, ai->ai_addrlen);
		if (rc == 0)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

void
client_close(struct client *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	buf_reset(&c->rbuf);
}

/* --- raw reads and writes ------------------------------------------------ */

/* Records why the OpenSSL call failed (first error in the queue). */
static void
client_ssl_error_text(char *out, size_t outlen, int *reason_r)
{
	unsigned long e = ERR_peek_error();

	*reason_r = e != 0 ? ERR_GET_REASON(e) : 0;
	if (e == 0)
		snprintf(out, outlen, "unknown TLS error");
	else
		ERR_error_string_n(e, out, outlen);
	ERR_clear_error();
}

/* Reads what is available (at most the free space of rbuf) before the
 * deadline. >0 bytes, 0 EOF, -1 error (set). */
ssize_t
client_read_some(struct client *c, long long deadline, const char *what)
{
	char tmp[4096];
	size_t room = c->rbuf.max - c->rbuf.len;

	if (room == 0) {
		client_set_error(c, CLIENT_E_PROTOCOL, 0, "%s: read buffer full", what);
		return -1;
	}
	if (room > sizeof(tmp))
		room = sizeof(tmp);
	for (;;) {
		ssize_t n;
		short ev = POLLIN;

		if (c->ssl != NULL) {
			int r, se;

			ERR_clear_error();
			r = SSL_read(c->ssl, tmp, (int)room);
			if (r > 0) {
				n = r;
				goto got;
			}
			se = SSL_get_error(c->ssl, r);
			if (se == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (se == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else if (se != SSL_ERROR_WANT_READ) {
				int reason, e = errno;
				char text[200];

				if (se == SSL_ERROR_SYSCALL && (e == ECONNRESET || e == EPIPE)) {
					client_set_error(c, CLIENT_E_RESET, e,
					    "%s: connection reset by peer", what);
					return -1;
				}
				client_ssl_error_text(text, sizeof(text), &reason);
				client_set_error(
				    c, CLIENT_E_TLS, 0, "%s: TLS error: %s", what, text);
				return -1;
			}
		} else {
			n = read(c->fd, tmp, room);
			if (n > 0)
				goto got;
			if (n == 0)
				return 0;
			if (errno == ECONNRESET) {
				client_set_error(
				    c, CLIENT_E_RESET, errno, "%s: connection reset by peer", what);
				return -1;
			}
			if (errno != EAGAIN && errno != EINTR) {
				client_set_error(c, CLIENT_E_RESET, errno, "%s: read: %s", what,
				    strerror(errno));
				return -1;
			}
		}
		if (!client_wait(c, ev, deadline)) {
			client_set_error(c, CLIENT_E_TIMEOUT, ETIMEDOUT, "%s: nothing within %d ms",
			    what, c->timeout_ms);
			return -1;
		}
		continue;
	got:
		if (buf_append(&c->rbuf, tmp, (size_t)n) == -1) {
			client_set_error(c, CLIENT_E_PROTOCOL, 0, "%s: read buffer full", what);
			return -1;
		}
		return n;
	}
}

int
client_write_all(struct client *c, const char *p, size_t n, const char *what)
{
	long long deadline = client_now_ms() + c->timeout_ms;

	while (n > 0) {
		short ev = POLLOUT;
		ssize_t w;

		if (c->ssl != NULL) {
			int r, se;

			ERR_clear_error();
			r = SSL_write(c->ssl, p, n > 65536 ? 65536 : (int)n);
			if (r > 0) {
				p += r;
				n -= (size_t)r;
				continue;
			}
			se = SSL_get_error(c->ssl, r);
			if (se == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (se != SSL_ERROR_WANT_WRITE) {
				int reason, e = errno;
				char text[200];

				if (se == SSL_ERROR_SYSCALL && (e == ECONNRESET || e == EPIPE)) {
					client_set_error(c, CLIENT_E_RESET, e,
					    "%s: connection reset by peer", what);
					return -1;
				}
				client_ssl_error_text(text, sizeof(text), &reason);
				client_set_error(
				    c, CLIENT_E_TLS, 0, "%s: TLS error: %s", what, text);
				return -1;
			}
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w > 0) {
				p += w;
				n -= (size_t)w;
				continue;
			}
			if (w == -1 && errno != EAGAIN && errno != EINTR) {
				client_set_error(c,
				    errno == ECONNRESET || errno == EPIPE ? CLIENT_E_RESET
				                                          : CLIENT_E_UNREACHABLE,
				    errno, "%s: write: %s", what, strerror(errno));
				return -1;
			}
		}
		if (!client_wait(c, ev, deadline)) {
			client_set_error(c, CLIENT_E_TIMEOUT, ETIMEDOUT,
			    "%s: could not write within %d ms", what, c->timeout_ms);
			return -1;
		}
	}
	return 0;
}

/* --- TLS -------------------------------------------------------------------- */

static int client_ssl_index = -1;
static pthread_once_t client_ssl_once = PTHREAD_ONCE_INIT;

static void
client_ssl_index_init(void)
{
	client_ssl_index = SSL_get_ex_new_index(0, "smtpgate client", NULL, NULL, NULL);
}

static int
client_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct client *c = ssl != NULL ? SSL_get_ex_data(ssl, client_ssl_index) : NULL;

	if (c == NULL)
		return ok;
	if (!ok) {
		struct client_tls_info *t = &c->tls;
		int err = X509_STORE_CTX_get_error(x), depth = X509_STORE_CTX_get_error_depth(x);
		bool seen = false;

		for (size_t i = 0; i < t->nerrors; i++)
			seen = seen || (t->errors[i].err == err && t->errors[i].depth == depth);
		if (!seen && t->nerrors < CLIENT_TLS_ERRORS_MAX) {
			t->errors[t->nerrors].err = err;
			t->errors[t->nerrors].depth = depth;
			t->nerrors++;
		}
	}
	/* none: encryption only; soft: the probe reports, the handshake goes on */
	if (c->conf.verify == CLIENT_VERIFY_NONE || c->conf.verify_soft)
		return 1;
	return ok;
}

static SSL_CTX *
client_ctx_new(struct client *c)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	if (c->conf.tls_legacy) {
		/* the probe's second try, to name the version an old server speaks */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
		(void)SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0");
	} else {
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); /* DESIGN 4: TLS 1.2 floor */
	}
	/* only initialises the digest table; DANE is per connection */
	(void)SSL_CTX_dane_enable(ctx);
	if (c->conf.cafile != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, c->conf.cafile, NULL) != 1) {
			char text[200];
			int reason;

			client_ssl_error_text(text, sizeof(text), &reason);
			client_set_error(c, CLIENT_E_LOCAL, 0, "cannot load CA file %s: %s",
			    c->conf.cafile, text);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else {
		(void)SSL_CTX_set_default_verify_paths(ctx);
	}
	return ctx;
}

static bool
client_is_ip_literal(const char *h)
{
	unsigned char b[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static void
client_name_text(X509_NAME *n, char *out, size_t outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long len;

	out[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(b, &p);
	if (len > 0)
		snprintf(out, outlen, "%.*s", (int)len, p);
	BIO_free(b);
}

static long long
client_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (long long)timegm(&tm);
}

static void
client_cert_info(X509 *x, struct client_cert_info *ci)
{
	GENERAL_NAMES *gens;
	EVP_PKEY *pk = X509_get0_pubkey(x);
	size_t used = 0;

	memset(ci, 0, sizeof(*ci));
	client_name_text(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
	client_name_text(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
	ci->not_before = client_asn1_time(X509_get0_notBefore(x));
	ci->not_after = client_asn1_time(X509_get0_notAfter(x));
	ci->self_signed =
	    X509_check_issued(x, x) == X509_V_OK && pk != NULL && X509_verify(x, pk) == 1;
	ERR_clear_error();
	if (pk != NULL) {
		int id = EVP_PKEY_get_base_id(pk);

		snprintf(ci->key, sizeof(ci->key), "%s %d",
		    id == EVP_PKEY_RSA           ? "RSA"
		        : id == EVP_PKEY_EC      ? "EC"
		        : id == EVP_PKEY_ED25519 ? "Ed25519"
		                                 : "other",
		    EVP_PKEY_get_bits(pk));
	}
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[INET6_ADDRSTRLEN] = "";
		const char *s = NULL;
		int n = 0;

		if (g->type == GEN_DNS) {
			s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
			n = ASN1_STRING_length(g->d.dNSName);
		} else if (g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);

			if (l == 4 || l == 16)
				inet_ntop(l == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip));
			s = ip;
			n = (int)strlen(ip);
		}
		if (s == NULL || n <= 0)
			continue;
		int w = snprintf(
		    ci->names + used, sizeof(ci->names) - used, "%s%.*s", used ? "," : "", n, s);
		if (w < 0 || (size_t)w >= sizeof(ci->names) - used)
			break;
		used += (size_t)w;
	}
	GENERAL_NAMES_free(gens);
}

static void
client_tls_collect(struct client *c)
{
	struct client_tls_info *t = &c->tls;
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->ssl);
	STACK_OF(X509) *verified = SSL_get0_verified_chain(c->ssl);
	int n;

	t->active = true;
	t->version_num = SSL_version(c->ssl);
	snprintf(t->version, sizeof(t->version), "%s", SSL_get_version(c->ssl));
	snprintf(t->cipher, sizeof(t->cipher), "%s", SSL_get_cipher_name(c->ssl));
	n = chain != NULL ? sk_X509_num(chain) : 0;
	t->sent_len = n > 0 ? (size_t)n : 0;
	t->nchain = 0;
	for (int i = 0; i < n && t->nchain < CLIENT_CHAIN_MAX; i++)
		client_cert_info(sk_X509_value(chain, i), &t->chain[t->nchain++]);
	t->verified = t->nerrors == 0 && SSL_get_verify_result(c->ssl) == X509_V_OK && n > 0;
	t->verified_len = t->verified && verified != NULL ? (size_t)sk_X509_num(verified) : 0;

	/* channel binding for -PLUS: RFC 9266 on TLS 1.3, RFC 5929 3 on 1.2 */
	c->cblen = 0;
	if (t->version_num >= TLS1_3_VERSION) {
		if (SSL_export_keying_material(
		        c->ssl, c->cb, 32, "EXPORTER-Channel-Binding", 24, NULL, 0, 0) == 1) {
			c->cblen = 32;
			c->cb_exporter = true;
		}
	} else {
		size_t l = SSL_get_finished(c->ssl, c->cb, sizeof(c->cb));

		if (l > 0 && l <= sizeof(c->cb)) {
			c->cblen = l;
			c->cb_exporter = false;
		}
	}
}

/*
 * DANE (RFC 7672): the TLSA records replace the CA store as the trust
 * anchors. DANE-EE(3) matches skip name checks (RFC 7672 3.1.1); DANE-TA(2)
 * keeps them against the base domain and the names set for verification.
 */
static int
client_dane_setup(struct client *c, const char *sni)
{
	const char *base = c->conf.dane_base != NULL ? c->conf.dane_base
	    : sni != NULL                            ? sni
	                                             : c->conf.host;
	int usable = 0;

	c->tls.dane = true;
	c->tls.dane_depth = -1;
	if (c->conf.verify == CLIENT_VERIFY_NONE || base == NULL ||
	    SSL_dane_enable(c->ssl, base) <= 0) {
		client_set_error(c, CLIENT_E_LOCAL, 0,
		    "cannot enable DANE (verification off, no base domain, or a TLS context without SSL_CTX_dane_enable)");
		return -1;
	}
	(void)SSL_dane_set_flags(c->ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	/* SSL_dane_enable made base the name to check; keep the other one too */
	if (c->tls.verify_host[0] != '\0' && strcasecmp(c->tls.verify_host, base) != 0)
		(void)SSL_add1_host(c->ssl, c->tls.verify_host);
	for (size_t i = 0; i < c->conf.ndane; i++) {
		const struct client_tlsa *t = &c->conf.dane[i];

		if (SSL_dane_tlsa_add(c->ssl, t->usage, t->selector, t->mtype, t->data, t->len) > 0)
			usable++;
	}
	ERR_clear_error();
	if (usable == 0) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "no usable TLSA record for %s", base);
		return -1;
	}
	client_transcript_addf(
	    c->conf.transcript, CLIENT_T_INFO, "DANE: %d TLSA record(s) for %s", usable, base);
	return 0;
}

int
client_tls_handshake(struct client *c)
{
	long long deadline = client_now_ms() + c->timeout_ms;
	struct client_tls_info *t = &c->tls;
	const char *sni, *vhost;
	SSL_CTX *ctx;

	pthread_once(&client_ssl_once, client_ssl_index_init);
	memset(t, 0, sizeof(*t));
	if (c->ctx == NULL) {
		c->ctx = client_ctx_new(c);
		if (c->ctx == NULL) {
			if (c->err.kind == CLIENT_E_NONE)
				client_set_error(
				    c, CLIENT_E_LOCAL, 0, "cannot create a TLS context");
			return -1;
		}
	}
	ctx = c->ctx;
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		client_set_error(c, CLIENT_E_LOCAL, 0, "cannot create a TLS connection");
		return -1;
	}
	SSL_set_ex_data(c->ssl, client_ssl_index, c);
	SSL_set_verify(c->ssl, SSL_VERIFY_PEER, client_verify_cb);
	sni = c->conf.sni != NULL                                           ? c->conf.sni
	    : (c->conf.host != NULL && !client_is_ip_literal(c->conf.host)) ? c->conf.host
	                                                                    : NULL;
	/* RFC 6066 3: no address literals in SNI */
	if (sni != NULL && !client_is_ip_literal(sni)) {
		SSL_set_tlsext_host_name(c->ssl, sni);
		snprintf(t->sni, sizeof(t->sni), "%s", sni);
	}
	vhost = c->conf.verify_host != NULL ? c->conf.verify_host
	    : sni != NULL                   ? sni
	                                    : c->conf.host;
	if (vhost != NULL && c->conf.unix_path == NULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);

		snprintf(t->verify_host, sizeof(t->verify_host), "%s", vhost);
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (client_is_ip_literal(vhost))
			(void)X509_VERIFY_PARAM_set1_ip_asc(vp, vhost);
		else
			(void)X509_VERIFY_PARAM_set1_host(vp, vhost, 0);
		if (c->conf.verify != CLIENT_VERIFY_PEER_HOST && !c->conf.verify_soft) {
			/* peer only: the name is not checked at all */
			(void)X509_VERIFY_PARAM_set1_host(vp, NULL, 0);
			t->verify_host[0] = '\0';
		}
	}
	if (c->conf.ndane > 0 && client_dane_setup(c, sni) == -1)
		return -1;
	client_transcript_addf(c->conf.transcript, CLIENT_T_INFO, "TLS handshake%s%s",
	    sni ? ", SNI " : "", sni ? sni : "");
	for (;;) {
		int r, se;
		short ev;

		ERR_clear_error();
		r = SSL_connect(c->ssl);
		if (r == 1)
			break;
		se = SSL_get_error(c->ssl, r);
		if (se == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (se == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			int reason = 0, e = errno;
			char text[200];
			long vr = SSL_get_verify_result(c->ssl);

			if (se == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
				snprintf(text, sizeof(text), "%s",
				    e == 0 || e == EAGAIN ? "connection closed by peer"
				                          : strerror(e));
				t->fail = CLIENT_TLS_FAIL_OTHER;
				snprintf(t->fail_detail, sizeof(t->fail_detail), "%s", text);
				client_set_error(c, e == ECONNRESET ? CLIENT_E_RESET : CLIENT_E_TLS,
				    e, "TLS handshake failed: %s", text);
				return -1;
			}
			client_ssl_error_text(text, sizeof(text), &reason);
			snprintf(t->fail_detail, sizeof(t->fail_detail), "%s", text);
			if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK) {
				t->fail = CLIENT_TLS_FAIL_VERIFY;
				client_set_error(c, CLIENT_E_TLS_VERIFY, 0,
				    "certificate verification failed: %s",
				    X509_verify_cert_error_string(vr));
				return -1;
			}
			switch (reason) {
			case SSL_R_WRONG_VERSION_NUMBER:
			case SSL_R_PACKET_LENGTH_TOO_LONG:
			case SSL_R_UNEXPECTED_MESSAGE:
			case SSL_R_HTTP_REQUEST:
				t->fail = CLIENT_TLS_FAIL_NOT_TLS;
				break;
			case SSL_R_UNSUPPORTED_PROTOCOL:
			case SSL_R_NO_PROTOCOLS_AVAILABLE:
			case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
			case SSL_R_VERSION_TOO_LOW:
				t->fail = CLIENT_TLS_FAIL_VERSION;
				break;
			default:
				t->fail = CLIENT_TLS_FAIL_OTHER;
				break;
			}
			client_set_error(c, CLIENT_E_TLS, 0, "TLS handshake failed: %s", text);
			return -1;
		}
		if (!client_wait(c, ev, deadline)) {
			t->fail = CLIENT_TLS_FAIL_OTHER;
			snprintf(t->fail_detail, sizeof(t->fail_detail), "no answer within %d ms",
			    c->timeout_ms);
			client_set_error(c, CLIENT_E_TIMEOUT, ETIMEDOUT,
			    "TLS handshake: no answer within %d ms", c->timeout_ms);
			return -1;
		}
	}
	client_tls_collect(c);
	if (c->tls.dane) {
		uint8_t u, sel, mt;
		int depth = SSL_get0_dane_authority(c->ssl, NULL, NULL);

		if (depth >= 0 && SSL_get0_dane_tlsa(c->ssl, &u, &sel, &mt, NULL, NULL) >= 0) {
			t->dane_matched = true;
			t->dane_depth = depth;
			t->dane_usage = u;
			t->dane_selector = sel;
			t->dane_mtype = mt;
			client_transcript_addf(c->conf.transcript, CLIENT_T_INFO,
			    "DANE: TLSA %u %u %u matched at depth %d", u, sel, mt, depth);
		}
	}
	client_transcript_addf(c->conf.transcript, CLIENT_T_INFO, "TLS established: %s, %s%s",
	    t->version, t->cipher, t->verified ? ", certificate verified" : "");
	return 0;
}
