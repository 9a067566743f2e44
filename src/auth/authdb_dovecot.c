/*
 * authdb_dovecot: the dovecot:SOCKET backend of authdb (authdb_priv.h,
 * doc/dovecot.md), an adapter over dovecot_auth's blocking client.
 *
 * Dovecot decides and keeps its own timing (auth_failure_delay), so authdb
 * does not pad its failures, and its workers mostly wait: more of them
 * than for hashing. The auth-client protocol never hands out stored
 * credentials, so there are no SCRAM or CRAM-MD5 keys (every user gets
 * authdb's fakes; conf refuses those mechanisms with this backend), no
 * senders= and no last-use record.
 */
#include <stddef.h>

#include "auth/authdb_priv.h"
#include "auth/dovecot_auth.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define AUTHDB_DOVECOT_WORKERS 16 /* they wait on Dovecot (auth_failure_delay), not hash */

static void *
authdb_dovecot_open(const char *sock, const struct conf *c, char *err, size_t errlen)
{
	struct dovecot_auth *da = dovecot_auth_new(sock);
	char perr[512];

	/* Dovecot may start after us or restart at any time: a missing socket
	 * is not fatal; AUTH answers 454 4.7.0 until it is there
	 * (doc/dovecot.md). */
	if (dovecot_auth_probe(da, perr, sizeof(perr)) == -1)
		log_event(LOG_WARNING, "dovecot_auth_unreachable", 0, "{s:s, s:s}", "error", perr,
		    "effect", "starting anyway; AUTH answers 454 until it is reachable");
	return da;
}

static void
authdb_dovecot_free(void *be)
{
	dovecot_auth_free(be);
}

/* Reconnect: the next requests open new connections. */
static int
authdb_dovecot_reload(void *be, char *err, size_t errlen)
{
	dovecot_auth_reset(be);
	return 0;
}

static enum authdb_result
authdb_dovecot_verify(void *be, const struct authdb_verify *v, struct authdb_match *m_r)
{
	char user[AUTHDB_USER_MAX + 1];

	/* rip: the client's address, for Dovecot's logs and auth policy */
	switch (dovecot_auth_verify(be, v->session_id, v->client, v->user, v->userlen, v->password,
	    v->passlen, user, sizeof(user))) {
	case DOVECOT_AUTH_OK:
		m_r->user = xstrdup(user);
		return AUTHDB_OK;
	case DOVECOT_AUTH_FAIL:
		return AUTHDB_FAIL;
	case DOVECOT_AUTH_TEMPFAIL:
		break;
	}
	return AUTHDB_TEMPFAIL;
}

const struct authdb_backend authdb_dovecot_backend = {
    .name = "dovecot",
    .usage = "dovecot:SOCKET",
    .workers = AUTHDB_DOVECOT_WORKERS,
    .pads = false,
    .open = authdb_dovecot_open,
    .free = authdb_dovecot_free,
    .reload = authdb_dovecot_reload,
    .verify = authdb_dovecot_verify,
};
