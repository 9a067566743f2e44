/*
 * sasl_oauth: decoders for XOAUTH2 and OAUTHBEARER client responses and the
 * RFC 7628 3.2.2 error challenge. Pure: bytes in, fields out.
 *
 * Both responses are sequences of key=value pairs each ended by %x01, the
 * whole ended by one more %x01 (RFC 7628 3.1 kvpair / client-resp); the
 * OAUTHBEARER one starts with a GS2 header (RFC 5801 4). Every byte is
 * accounted for: trailing data after the final %x01, a missing terminator,
 * control bytes or NUL inside a value, a repeated key and an over-long
 * user or token are all refused.
 */
#include "sasl/sasl_oauth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define SASL_OAUTH_KVSEP '\x01'

struct sasl_oauth_kv {
	const char *key;
	size_t keylen;
	const char *value;
	size_t valuelen;
};

static bool
sasl_oauth_is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 7628 3.1: value = *(VCHAR / SP / HTAB / CR / LF) */
static bool
sasl_oauth_is_value_char(unsigned char c)
{
	return (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
 * "+" / "/" ) *"=" */
static bool
sasl_oauth_is_b64token_char(char c)
{
	return sasl_oauth_is_alpha((unsigned char)c) || (c >= '0' && c <= '9') || c == '-' ||
	    c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

static bool
sasl_oauth_is_b64token(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && sasl_oauth_is_b64token_char(p[i]))
		i++;
	if (i == 0)
		return false;
	while (i < n && p[i] == '=')
		i++;
	return i == n;
}

/*
 * The next kvpair at *pos, or the end: returns 1 with kv filled, 0 at the
 * final %x01 (which must be the last byte), -1 on malformed input.
 */
static int
sasl_oauth_next_kv(
    const char *msg, size_t len, size_t *pos, struct sasl_oauth_kv *kv, const char **errstr_r)
{
	size_t i = *pos;

	if (i >= len) {
		*errstr_r = "missing final %x01";
		return -1;
	}
	if (msg[i] == SASL_OAUTH_KVSEP) {
		if (i + 1 != len) {
			*errstr_r = "data after the final %x01";
			return -1;
		}
		*pos = len;
		return 0;
	}
	/* RFC 7628 3.1: key = 1*(ALPHA) */
	kv->key = msg + i;
	while (i < len && sasl_oauth_is_alpha((unsigned char)msg[i]))
		i++;
	kv->keylen = (size_t)(msg + i - kv->key);
	if (kv->keylen == 0 || i >= len || msg[i] != '=') {
		*errstr_r = "malformed key=value pair";
		return -1;
	}
	kv->value = msg + ++i;
	while (i < len && msg[i] != SASL_OAUTH_KVSEP) {
		if (!sasl_oauth_is_value_char((unsigned char)msg[i])) {
			*errstr_r = "control character in a value";
			return -1;
		}
		i++;
	}
	if (i >= len) {
		*errstr_r = "missing %x01 after a value";
		return -1;
	}
	kv->valuelen = (size_t)(msg + i - kv->value);
	*pos = i + 1;
	return 1;
}

static bool
sasl_oauth_key_is(const struct sasl_oauth_kv *kv, const char *name)
{
	return kv->keylen == strlen(name) && memcmp(kv->key, name, kv->keylen) == 0;
}

/* "Bearer" 1*SP b64token (RFC 6750 2.1; the scheme name is
 * case-insensitive, RFC 7235 2.1). */
static int
sasl_oauth_auth_value(
    const struct sasl_oauth_kv *kv, struct sasl_oauth_cred *cred, const char **errstr_r)
{
	const char *p = kv->value;
	size_t n = kv->valuelen, i = 6;

	if (n < 6 || strncasecmp(p, "Bearer", 6) != 0) {
		*errstr_r = "auth scheme is not Bearer";
		return -1;
	}
	if (i >= n || p[i] != ' ') {
		*errstr_r = "no space after Bearer";
		return -1;
	}
	while (i < n && p[i] == ' ')
		i++;
	if (n - i > SASL_OAUTH_TOKEN_MAX) {
		*errstr_r = "token too long";
		return -1;
	}
	if (!sasl_oauth_is_b64token(p + i, n - i)) {
		*errstr_r = "token is not a b64token";
		return -1;
	}
	cred->token = p + i;
	cred->tokenlen = n - i;
	return 0;
}

static void
sasl_oauth_cred_init(struct sasl_oauth_cred *cred)
{
	memset(cred, 0, sizeof(*cred));
}

int
sasl_xoauth2_parse(
    const char *msg, size_t len, struct sasl_oauth_cred *cred_r, const char **errstr_r)
{
	struct sasl_oauth_kv kv;
	size_t pos = 0;
	int r;

	sasl_oauth_cred_init(cred_r);
	/* "user=" USER %x01 */
	if ((r = sasl_oauth_next_kv(msg, len, &pos, &kv, errstr_r)) == -1)
		goto fail;
	if (r == 0 || !sasl_oauth_key_is(&kv, "user")) {
		*errstr_r = "missing user=";
		goto fail;
	}
	if (kv.valuelen == 0 || kv.valuelen > SASL_OAUTH_USER_MAX) {
		*errstr_r = kv.valuelen == 0 ? "empty user" : "user too long";
		goto fail;
	}
	for (size_t i = 0; i < kv.valuelen; i++) {
		if ((unsigned char)kv.value[i] < 0x20) {
			*errstr_r = "control character in user";
			goto fail;
		}
	}
	memcpy(cred_r->user, kv.value, kv.valuelen);
	cred_r->user[kv.valuelen] = '\0';
	cred_r->userlen = kv.valuelen;
	/* "auth=Bearer " TOKEN %x01 */
	if ((r = sasl_oauth_next_kv(msg, len, &pos, &kv, errstr_r)) == -1)
		goto fail;
	if (r == 0 || !sasl_oauth_key_is(&kv, "auth")) {
		*errstr_r = "missing auth=";
		goto fail;
	}
	if (sasl_oauth_auth_value(&kv, cred_r, errstr_r) == -1)
		goto fail;
	/* %x01: the end */
	if ((r = sasl_oauth_next_kv(msg, len, &pos, &kv, errstr_r)) == -1)
		goto fail;
	if (r != 0) {
		*errstr_r = "unexpected key after auth=";
		goto fail;
	}
	return 0;
fail:
	sasl_oauth_cred_init(cred_r);
	return -1;
}

/*
 * RFC 5801 4: gs2-header = gs2-cb-flag "," [gs2-authzid] ","
 *   gs2-cb-flag = ("p=" cb-name) / "n" / "y";  gs2-authzid = "a=" saslname
 *   saslname = 1*(UTF8-char-safe / "=2C" / "=3D")
 * The non-standard flag "F," (GSS-API mechanisms only) is refused.
 */
static int
sasl_oauthbearer_gs2(
    const char *msg, size_t len, size_t *pos, struct sasl_oauth_cred *cred, const char **errstr_r)
{
	size_t i = 0, n = 0;

	if (len < 2 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
		/* RFC 7628 3.1: no channel binding in OAUTHBEARER, so "p=" is
		 * a client that wants what it cannot get */
		*errstr_r = len >= 2 && msg[0] == 'p' && msg[1] == '=' ? "channel binding requested"
		                                                       : "malformed gs2 header";
		return -1;
	}
	i = 2;
	if (i < len && msg[i] == 'a') {
		if (i + 1 >= len || msg[i + 1] != '=') {
			*errstr_r = "malformed gs2 authzid";
			return -1;
		}
		i += 2;
		while (i < len && msg[i] != ',') {
			unsigned char c = (unsigned char)msg[i];

			if (c == '=') {
				if (i + 2 < len && msg[i + 1] == '2' && msg[i + 2] == 'C')
					c = ',';
				else if (i + 2 < len && msg[i + 1] == '3' && msg[i + 2] == 'D')
					c = '=';
				else {
					*errstr_r = "bad escape in gs2 authzid";
					return -1;
				}
				i += 2;
			} else if (c < 0x20 || c == 0x7f) {
				*errstr_r = "control character in gs2 authzid";
				return -1;
			}
			if (n >= SASL_OAUTH_USER_MAX) {
				*errstr_r = "user too long";
				return -1;
			}
			cred->user[n++] = (char)c;
			i++;
		}
		if (n == 0) {
			*errstr_r = "empty gs2 authzid";
			return -1;
		}
	}
	if (i >= len || msg[i] != ',') {
		*errstr_r = "malformed gs2 header";
		return -1;
	}
	i++;
	cred->user[n] = '\0';
	cred->userlen = n;
	/* RFC 7628 3.1: gs2-header kvsep */
	if (i >= len || msg[i] != SASL_OAUTH_KVSEP) {
		*errstr_r = "missing %x01 after the gs2 header";
		return -1;
	}
	*pos = i + 1;
	return 0;
}

int
sasl_oauthbearer_parse(
    const char *msg, size_t len, struct sasl_oauth_cred *cred_r, const char **errstr_r)
{
	struct sasl_oauth_kv kv;
	bool seen_auth = false, seen_host = false, seen_port = false;
	size_t pos = 0;
	int r;

	sasl_oauth_cred_init(cred_r);
	if (sasl_oauthbearer_gs2(msg, len, &pos, cred_r, errstr_r) == -1)
		goto fail;
	while ((r = sasl_oauth_next_kv(msg, len, &pos, &kv, errstr_r)) == 1) {
		if (sasl_oauth_key_is(&kv, "auth")) {
			if (seen_auth) {
				*errstr_r = "repeated auth=";
				goto fail;
			}
			seen_auth = true;
			if (sasl_oauth_auth_value(&kv, cred_r, errstr_r) == -1)
				goto fail;
		} else if (sasl_oauth_key_is(&kv, "host")) {
			if (seen_host || kv.valuelen > SASL_OAUTH_HOST_MAX) {
				*errstr_r = seen_host ? "repeated host=" : "host too long";
				goto fail;
			}
			seen_host = true;
			cred_r->host = kv.value;
			cred_r->hostlen = kv.valuelen;
		} else if (sasl_oauth_key_is(&kv, "port")) {
			unsigned port = 0;

			if (seen_port || kv.valuelen == 0 || kv.valuelen > 5) {
				*errstr_r = seen_port ? "repeated port=" : "malformed port";
				goto fail;
			}
			for (size_t i = 0; i < kv.valuelen; i++) {
				if (kv.value[i] < '0' || kv.value[i] > '9') {
					*errstr_r = "malformed port";
					goto fail;
				}
				port = port * 10 + (unsigned)(kv.value[i] - '0');
			}
			if (port > 65535) {
				*errstr_r = "malformed port";
				goto fail;
			}
			seen_port = true;
			cred_r->port = port;
		}
		/* RFC 7628 3.1: other keys are extensions; ignored */
	}
	if (r == -1)
		goto fail;
	if (!seen_auth) {
		*errstr_r = "missing auth=";
		goto fail;
	}
	return 0;
fail:
	sasl_oauth_cred_init(cred_r);
	return -1;
}

bool
sasl_oauth_is_error_ack(enum sasl_oauth_mech mech, const char *in, size_t len)
{
	if (mech == SASL_OAUTH_OAUTHBEARER)
		return len == 1 && in[0] == SASL_OAUTH_KVSEP;
	return len == 0;
}

int
sasl_oauth_error_json(
    enum sasl_oauth_mech mech, const char *scope, const char *openid_config, struct buf *out)
{
	json_t *o;
	char *s = NULL;
	int r = -1;

	/* RFC 7628 3.2.2; Google's XOAUTH2 uses the HTTP status instead */
	o = json_pack("{s:s, s:s}", "status",
	    mech == SASL_OAUTH_OAUTHBEARER ? "invalid_token" : "401", "schemes", "bearer");
	if (o == NULL)
		return -1;
	if (scope != NULL && json_object_set_new(o, "scope", json_string(scope)) == -1)
		goto fail;
	if (openid_config != NULL &&
	    json_object_set_new(o, "openid-configuration", json_string(openid_config)) == -1)
		goto fail;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s == NULL)
		goto fail;
	r = buf_append_str(out, s);
fail:
	free(s);
	json_decref(o);
	return r;
}
