/*
 * conf_cert: the words for a [tls] cert/key pair that cannot be used. The
 * server (net/tls.c, when it loads the pair) and the audit (diag/audit.c)
 * both describe a problem with these, so an administrator reads the same
 * sentence, naming the file, its config line and the fix, whichever ran.
 */
#include "conf/conf.h"

#include <stdio.h>
#include <string.h>

void
conf_cert_describe(const struct conf *c, const struct conf_cert *cc, enum conf_cert_problem pr,
    int errnum, char *out, size_t outlen)
{
	int cl = cc->cert_line ? cc->cert_line : cc->line;
	int kl = cc->key_line ? cc->key_line : cc->line;

	switch (pr) {
	case CONF_CERT_CERT_UNREADABLE:
		snprintf(out, outlen, "%s:%d: [tls] cert %s cannot be read: %s", c->path, cl,
		    cc->cert, strerror(errnum));
		break;
	case CONF_CERT_CERT_NO_PEM:
		snprintf(out, outlen, "%s:%d: [tls] cert %s holds no PEM certificate", c->path, cl,
		    cc->cert);
		break;
	case CONF_CERT_KEY_UNREADABLE:
		snprintf(out, outlen, "%s:%d: [tls] key %s cannot be read: %s", c->path, kl,
		    cc->key, strerror(errnum));
		break;
	case CONF_CERT_KEY_NO_PEM:
		snprintf(out, outlen, "%s:%d: [tls] key %s holds no unencrypted PEM private key",
		    c->path, kl, cc->key);
		break;
	case CONF_CERT_KEY_MISMATCH:
		snprintf(out, outlen,
		    "%s:%d: [tls] key %s does not match the first certificate of %s (line %d)",
		    c->path, kl, cc->key, cc->cert, cl);
		break;
	}
}

const char *
conf_cert_fix(enum conf_cert_problem pr)
{
	switch (pr) {
	case CONF_CERT_CERT_UNREADABLE:
	case CONF_CERT_KEY_UNREADABLE:
		return "check the path (relative paths are relative to the config file's folder) "
		       "and that the user smtpgate runs as may read it";
	case CONF_CERT_CERT_NO_PEM:
		return "the cert file must be PEM (-----BEGIN CERTIFICATE-----): the server's "
		       "certificate first, then the intermediates";
	case CONF_CERT_KEY_NO_PEM:
		return "the key file must be an unencrypted PEM private key (-----BEGIN PRIVATE "
		       "KEY-----); decrypt it with `openssl pkey -in KEY -out KEY.new`";
	case CONF_CERT_KEY_MISMATCH:
		return "pair each cert with its own key, in order, and put the server's own "
		       "certificate first in the chain file; compare `openssl x509 -noout -pubkey "
		       "-in CERT` with `openssl pkey -pubout -in KEY`";
	}
	return "";
}
