/*
 * authdb_keys: the asynchronous stored-key lookup for SASL mechanisms that
 * need keys rather than a password (SCRAM-*, CRAM-MD5; sasl.h
 * SASL_NEED_KEYS), over the inline authdb_scram_keys / authdb_cram_key.
 *
 * The lookup itself is cheap (a snapshot search, an HMAC for a fake salt),
 * but it runs on the authdb worker pool like a verification: so the
 * passwd-file change check happens first (a `user lock` or `passwd` counts
 * at the next SCRAM login too) and the loop thread never parses the file.
 * A full pool answers TEMPFAIL (454). The answer goes through loop_post, the
 * same request/response shape as a verification (DESIGN 1).
 *
 * Ownership: the reply owns a copy of the keys (wiped in
 * authdb_keys_reply_run after the callback) and of the canonical name.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/authdb.h"
#include "auth/pwscheme.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/loop.h"

struct authdb_keys_reply {
	authdb_keys_cb *cb;
	void *ctx;
	uint64_t session_id;
	enum authdb_result result;
	struct sasl_keys keys; /* secret */
	char *user; /* canonical, or NULL */
};

static void
authdb_keys_reply_run(void *arg)
{
	struct authdb_keys_reply *rep = arg;

	rep->cb(rep->ctx, rep->session_id, rep->result,
	    rep->result == AUTHDB_OK ? &rep->keys : NULL, rep->user);
	free(rep->user);
	xfree_secret(rep, sizeof(*rep));
}

static int
authdb_keys_scram(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct sasl_keys *k, char **user_r)
{
	struct pwscheme_scram sk;
	int r;

	r = authdb_scram_keys(db, user, userlen, scheme, &sk, user_r);
	if (r == 0 && sk.saltlen <= sizeof(k->salt) && sk.keylen <= sizeof(k->stored_key)) {
		k->iter = sk.iter;
		memcpy(k->salt, sk.salt, sk.saltlen);
		k->saltlen = sk.saltlen;
		memcpy(k->stored_key, sk.stored_key, sk.keylen);
		memcpy(k->server_key, sk.server_key, sk.keylen);
		k->keylen = sk.keylen;
	} else {
		r = -1;
	}
	explicit_bzero(&sk, sizeof(sk));
	return r;
}

struct authdb_keys_task {
	struct loop *loop;
	char *user;
	size_t userlen;
	enum sasl_keys_kind kind;
	struct authdb_keys_reply *rep;
};

/* On a worker (or at once when refused): look the keys up, post the answer. */
static void
authdb_keys_task_run(struct authdb *db, void *arg, bool refused)
{
	struct authdb_keys_task *t = arg;
	struct authdb_keys_reply *rep = t->rep;
	int r = -1;

	if (!refused) {
		switch (t->kind) {
		case SASL_KEYS_SCRAM_SHA1:
			r = authdb_keys_scram(
			    db, t->user, t->userlen, PWSCHEME_SCRAM_SHA1, &rep->keys, &rep->user);
			break;
		case SASL_KEYS_SCRAM_SHA256:
			r = authdb_keys_scram(
			    db, t->user, t->userlen, PWSCHEME_SCRAM_SHA256, &rep->keys, &rep->user);
			break;
		case SASL_KEYS_CRAM_MD5:
			r = authdb_cram_key(db, t->user, t->userlen, rep->keys.secret,
			    &rep->keys.secretlen, &rep->user);
			break;
		case SASL_KEYS_NONE:
			break;
		}
		if (r == -1)
			log_event(LOG_ERR, "authdb_keys_error", rep->session_id, "{s:i}", "kind",
			    (int)t->kind);
	}
	if (r == -1) {
		free(rep->user);
		rep->user = NULL;
		explicit_bzero(&rep->keys, sizeof(rep->keys));
		rep->result = AUTHDB_TEMPFAIL;
	} else {
		rep->result = AUTHDB_OK;
	}
	loop_post(t->loop, authdb_keys_reply_run, rep);
	xfree_secret(t->user, t->userlen + 1);
	free(t);
}

void
authdb_lookup_keys(struct authdb *db, struct loop *loop, uint64_t session_id, const char *user,
    size_t userlen, enum sasl_keys_kind kind, authdb_keys_cb *cb, void *ctx)
{
	struct authdb_keys_task *t = xcalloc(1, sizeof(*t));
	struct authdb_keys_reply *rep = xcalloc(1, sizeof(*rep));

	rep->cb = cb;
	rep->ctx = ctx;
	rep->session_id = session_id;
	t->loop = loop;
	t->kind = kind;
	t->rep = rep;
	t->userlen = userlen;
	t->user = xmalloc(userlen + 1);
	memcpy(t->user, user, userlen);
	t->user[userlen] = '\0';
	/* on the worker pool: the lookup sees passwd-file changes at once and
	 * the loop thread never parses the file */
	authdb_run_task(db, authdb_keys_task_run, t);
}
