/*
 * client_sasl: the client side of the SASL mechanisms. PLAIN, LOGIN,
 * XOAUTH2 and OAUTHBEARER responses are formatted here (pure functions);
 * SCRAM-SHA-1/256 (and -PLUS) and CRAM-MD5 run in GNU SASL's client, which
 * checks the server's proof. Every buffer that held a secret is wiped.
 *
 * The server chooses the SCRAM iteration count and GNU SASL takes any: at
 * i=4294967295 one AUTH is an hour of PBKDF2 on a worker thread or in the
 * probe, which no I/O timeout bounds. The server-first-message is checked
 * here first (CLIENT_SCRAM_ITER_MAX).
 */
#include "client/client.h"
#include "client/client_priv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gsasl.h>

#include "smtp/smtp_reply_parse.h"

#include "lib/base64.h"
#include "lib/xalloc.h"

const char *const client_sasl_mechs[] = {
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
    "XOAUTH2",
    "OAUTHBEARER",
    NULL,
};

bool
client_sasl_is_supported(const char *mech)
{
	for (size_t i = 0; client_sasl_mechs[i] != NULL; i++) {
		if (strcasecmp(client_sasl_mechs[i], mech) == 0)
			return true;
	}
	return false;
}

bool
client_sasl_is_oauth(const char *mech)
{
	return strcasecmp(mech, "XOAUTH2") == 0 || strcasecmp(mech, "OAUTHBEARER") == 0;
}

int
client_sasl_plain(const char *user, const char *pass, size_t passlen, struct buf *out)
{
	if (buf_append(out, "", 1) == -1 || buf_append_str(out, user) == -1 ||
	    buf_append(out, "", 1) == -1 || buf_append(out, pass, passlen) == -1)
		return -1;
	return 0;
}

int
client_sasl_xoauth2(const char *user, const char *token, size_t tokenlen, struct buf *out)
{
	if (buf_printf(out, "user=%s\001auth=Bearer ", user) == -1 ||
	    buf_append(out, token, tokenlen) == -1 || buf_append(out, "\001\001", 2) == -1)
		return -1;
	return 0;
}

int
client_sasl_oauthbearer(const char *user, const char *host, const char *port, const char *token,
    size_t tokenlen, struct buf *out)
{
	if (buf_append_str(out, "n,a=") == -1)
		return -1;
	/* RFC 5801 4: saslname escapes ',' and '=' */
	for (const char *u = user; *u != '\0'; u++) {
		int r = *u == ',' ? buf_append_str(out, "=2C")
		    : *u == '='   ? buf_append_str(out, "=3D")
		                  : buf_append(out, u, 1);

		if (r == -1)
			return -1;
	}
	if (buf_append_str(out, ",\001") == -1)
		return -1;
	if (host != NULL && *host != '\0' && buf_printf(out, "host=%s\001", host) == -1)
		return -1;
	if (port != NULL && *port != '\0' && buf_printf(out, "port=%s\001", port) == -1)
		return -1;
	if (buf_append_str(out, "auth=Bearer ") == -1 || buf_append(out, token, tokenlen) == -1 ||
	    buf_append(out, "\001\001", 2) == -1)
		return -1;
	return 0;
}

/* RFC 7677 4: at least 4096; OWASP's 600000 for PBKDF2-SHA256 still passes.
 * About 1 s of CPU here (SHA-256). */
#define CLIENT_SCRAM_ITER_MAX 1000000
#define CLIENT_SCRAM_ITER_MAX_TEXT "1000000"

struct client_gsasl {
	Gsasl *ctx;
	Gsasl_session *sess;
	bool scram;
	unsigned steps; /* client_gsasl_step calls so far */
};

/*
 * RFC 5802 5.1: the i= attribute of a server-first-message (base64). false
 * when it asks for more than CLIENT_SCRAM_ITER_MAX iterations; anything
 * else malformed is left to GNU SASL to refuse.
 */
static bool
client_scram_iter_ok(const char *in_b64)
{
	struct buf d;
	bool ok = true;

	buf_init(&d, SMTP_REPLY_LINE_MAX);
	if (base64_decode(in_b64, strlen(in_b64), &d) == -1) {
		buf_free(&d);
		return true;
	}
	for (size_t i = 0; i < d.len;) {
		size_t end = i;

		while (end < d.len && d.data[end] != ',')
			end++;
		if (end - i >= 2 && d.data[i] == 'i' && d.data[i + 1] == '=') {
			unsigned long long v = 0;

			for (size_t k = i + 2; k < end && d.data[k] >= '0' && d.data[k] <= '9';
			     k++) {
				v = v * 10 + (unsigned long long)(d.data[k] - '0');
				if (v > CLIENT_SCRAM_ITER_MAX) {
					ok = false;
					break;
				}
			}
		}
		i = end + 1;
	}
	buf_free(&d);
	return ok;
}

void
client_gsasl_free(struct client_gsasl *g)
{
	if (g == NULL)
		return;
	if (g->sess != NULL)
		gsasl_finish(g->sess);
	if (g->ctx != NULL)
		gsasl_done(g->ctx);
	free(g);
}

struct client_gsasl *
client_gsasl_start(const char *mech, const char *user, const char *pass, size_t passlen,
    const unsigned char *cb, size_t cblen, int cb_exporter, const char **errstr_r)
{
	struct client_gsasl *g = xcalloc(1, sizeof(*g));
	char *p = NULL;
	struct buf cb64;
	int rc;

	buf_init(&cb64, 256);
	if (gsasl_init(&g->ctx) != GSASL_OK) {
		g->ctx = NULL;
		*errstr_r = "GNU SASL initialisation failed";
		goto fail;
	}
	g->scram = strncasecmp(mech, "SCRAM-", 6) == 0;
	rc = gsasl_client_start(g->ctx, mech, &g->sess);
	if (rc != GSASL_OK) {
		g->sess = NULL;
		*errstr_r = "GNU SASL does not support this mechanism";
		goto fail;
	}
	p = xstrndup(pass, passlen);
	gsasl_property_set(g->sess, GSASL_AUTHID, user);
	gsasl_property_set(g->sess, GSASL_PASSWORD, p);
	xfree_secret_str(p);
	if (cb != NULL && cblen > 0) {
		if (base64_encode(cb, cblen, &cb64) == -1) {
			*errstr_r = "channel binding data too long";
			goto fail;
		}
		gsasl_property_set(
		    g->sess, cb_exporter ? GSASL_CB_TLS_EXPORTER : GSASL_CB_TLS_UNIQUE, cb64.data);
	}
	buf_free(&cb64);
	return g;
fail:
	buf_free(&cb64);
	client_gsasl_free(g);
	return NULL;
}

int
client_gsasl_step(struct client_gsasl *g, const char *in_b64, char **out_b64, const char **errstr_r)
{
	char *out = NULL;
	int rc;

	/* the first step makes the client-first-message, the second reads
	 * the server-first-message */
	if (g->scram && g->steps++ == 1 && !client_scram_iter_ok(in_b64)) {
		*out_b64 = NULL;
		*errstr_r =
		    "the server asks for more than " CLIENT_SCRAM_ITER_MAX_TEXT " SCRAM iterations";
		return -1;
	}
	rc = gsasl_step64(g->sess, in_b64, &out);
	if (rc == GSASL_NEEDS_MORE || rc == GSASL_OK) {
		*out_b64 = out != NULL ? out : xstrdup("");
		return rc == GSASL_NEEDS_MORE ? 1 : 0;
	}
	if (out != NULL)
		xfree_secret_str(out);
	*out_b64 = NULL;
	switch (rc) {
	case GSASL_AUTHENTICATION_ERROR:
		*errstr_r = "the server's proof (SCRAM server signature) is wrong";
		break;
	case GSASL_MECHANISM_PARSE_ERROR:
		*errstr_r = "the server's challenge does not follow the mechanism";
		break;
	case GSASL_NO_CB_TLS_UNIQUE:
	case GSASL_NO_CB_TLS_EXPORTER:
		*errstr_r = "no channel binding data for -PLUS";
		break;
	default:
		*errstr_r = "GNU SASL step failed";
		break;
	}
	return -1;
}
