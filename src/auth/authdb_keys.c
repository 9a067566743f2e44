/*
 * authdb_keys: the asynchronous stored-key lookup for SASL mechanisms that
 * need keys rather than a password (SCRAM-*, CRAM-MD5; sasl.h
 * SASL_NEED_KEYS), over the inline authdb_scram_keys / authdb_cram_key.
 *
 * The lookup itself is cheap (a snapshot search, an HMAC for a fake salt),
 * but it runs on the authdb worker pool like a verification: so the
 * passwd-file change check happens first (a `user lock` or `passwd` counts
 * at the next SCRAM login too) and the loop thread never parses the file.
 * A full pool answers TEMPFAIL (454). The answer goes through the mailbox, the
 * same request/response shape as a verification (DESIGN 1).
 *
 * SCRAM gets every candidate credential of the user that shares the announced
 * salt (the main password and its app passwords, authdb_scram_candidates);
 * the mechanism tells from the proof which one the client used.
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
#include "lib/mailbox.h"

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

/* All candidate keys of user for scheme (authdb_scram_candidates) into k. */
static int
authdb_keys_scram(struct authdb *db, const char *user, size_t userlen, enum pwscheme scheme,
    struct sasl_keys *k, char **user_r)
{
	struct authdb_scram_cand *c = xcalloc(SASL_SCRAM_CAND_MAX, sizeof(*c));
	size_t n = 0;
	int r;

	r = authdb_scram_candidates(db, user, userlen, scheme, c, SASL_SCRAM_CAND_MAX, &n, user_r);
	if (r == 0 &&
	    (n == 0 || c[0].keys.saltlen > sizeof(k->salt) ||
	        c[0].keys.keylen > sizeof(k->stored_key)))
		r = -1;
	if (r == 0) {
		/* all candidates share the salt and iterations of the first */
		k->iter = c[0].keys.iter;
		memcpy(k->salt, c[0].keys.salt, c[0].keys.saltlen);
		k->saltlen = c[0].keys.saltlen;
		k->keylen = c[0].keys.keylen;
		memcpy(k->stored_key, c[0].keys.stored_key, k->keylen);
		memcpy(k->server_key, c[0].keys.server_key, k->keylen);
		for (size_t i = 0; i < n; i++) {
			memcpy(k->cand[i].stored_key, c[i].keys.stored_key, k->keylen);
			memcpy(k->cand[i].server_key, c[i].keys.server_key, k->keylen);
			memcpy(k->cand[i].label, c[i].label, sizeof(k->cand[i].label));
			memcpy(k->cand[i].created, c[i].created, sizeof(k->cand[i].created));
		}
		k->ncand = n;
	} else if (r == -1 && *user_r != NULL) {
		free(*user_r);
		*user_r = NULL;
	}
	xfree_secret(c, SASL_SCRAM_CAND_MAX * sizeof(*c));
	return r;
}

struct authdb_keys_task {
	struct mailbox *mb;
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
	mailbox_post(t->mb, authdb_keys_reply_run, rep);
	xfree_secret(t->user, t->userlen + 1);
	free(t);
}

void
authdb_lookup_keys(struct authdb *db, struct mailbox *mb, uint64_t session_id, const char *user,
    size_t userlen, enum sasl_keys_kind kind, authdb_keys_cb *cb, void *ctx)
{
	struct authdb_keys_task *t = xcalloc(1, sizeof(*t));
	struct authdb_keys_reply *rep = xcalloc(1, sizeof(*rep));

	rep->cb = cb;
	rep->ctx = ctx;
	rep->session_id = session_id;
	t->mb = mb;
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
