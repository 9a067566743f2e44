/*
 * tokenc: see tokenc.h.
 */
#include "server/tokenc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "net/ipc_sock.h"
#include "relay/creds.h"
#include "server/child.h"

#define TOKENC_MARGIN_S 5 /* beyond CREDS_COMMAND_TIMEOUT, for the round trip */

struct tokenc_wait {
	uint64_t id;
	bool done, ok;
	struct buf *out;
	char reason[256];
	struct tokenc_wait *next;
};

static pthread_mutex_t tokenc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tokenc_cond = PTHREAD_COND_INITIALIZER;
static struct tokenc_wait *tokenc_waits;
static uint64_t tokenc_next_id;
static int tokenc_ctl = -1;

/* Asks the parent for route r's token (kind 0) or credentials line
 * (kind 1) and waits for the answer, appended to out. 0, or -1 with err. */
static int
tokenc_ask(const struct conf_route *r, uint32_t kind, struct buf *out, char *err, size_t errlen)
{
	static struct ipc_out o; /* under tokenc_lock */
	struct tokenc_wait w = {.out = out};
	struct timespec deadline;
	int rc = -1;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += CREDS_COMMAND_TIMEOUT + TOKENC_MARGIN_S;
	pthread_mutex_lock(&tokenc_lock);
	w.id = ++tokenc_next_id;
	ipc_out_begin(&o, CHILD_MSG_TOKEN, w.id);
	ipc_put_u32(&o, r->domain == NULL);
	ipc_put_str(&o, r->domain);
	ipc_put_u32(&o, kind);
	if (tokenc_ctl == -1 || ipc_out_end(&o) == -1 || ipc_sock_send(tokenc_ctl, &o, -1) == -1) {
		pthread_mutex_unlock(&tokenc_lock);
		snprintf(err, errlen, "the server's parent process cannot be reached");
		return -1;
	}
	w.next = tokenc_waits;
	tokenc_waits = &w;
	while (!w.done) {
		if (pthread_cond_timedwait(&tokenc_cond, &tokenc_lock, &deadline) == ETIMEDOUT)
			break;
	}
	for (struct tokenc_wait **pp = &tokenc_waits; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	}
	if (w.done && w.ok)
		rc = 0;
	else
		snprintf(
		    err, errlen, "%s", w.done ? w.reason : "no answer from the parent process");
	pthread_mutex_unlock(&tokenc_lock);
	return rc;
}

static int
tokenc_run(const struct conf_route *r, const char *cmd, struct buf *out, char *err, size_t errlen)
{
	char why[256];

	(void)cmd; /* the parent reads it from its own copy of the file */
	if (tokenc_ask(r, 0, out, why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "token command: %s", why);
	return -1;
}

/* The credentials file, read by the parent: this process may not open it. */
static char *
tokenc_read(const struct conf_route *r, size_t *len_r, char *err, size_t errlen)
{
	struct buf b;
	char *text = NULL;

	buf_init(&b, IPC_PAYLOAD_MAX);
	buf_set_secret(&b);
	if (tokenc_ask(r, 1, &b, err, errlen) == 0) {
		text = xmalloc(b.len + 1);
		memcpy(text, b.data, b.len);
		text[b.len] = '\0';
		*len_r = b.len;
	}
	buf_free(&b);
	return text;
}

void
tokenc_start(int ctl)
{
	pthread_mutex_lock(&tokenc_lock);
	tokenc_ctl = ctl;
	pthread_mutex_unlock(&tokenc_lock);
	creds_set_runner(tokenc_run);
	creds_set_reader(tokenc_read);
}

void
tokenc_answer(const struct ipc_frame *f)
{
	struct ipc_reader rd;
	uint32_t ok;
	const unsigned char *d;
	size_t n;

	ipc_reader_init(&rd, f);
	if (ipc_get_u32(&rd, &ok) == -1 || ipc_get_bytes(&rd, IPC_PAYLOAD_MAX, &d, &n) == -1)
		return;
	pthread_mutex_lock(&tokenc_lock);
	for (struct tokenc_wait *w = tokenc_waits; w != NULL; w = w->next) {
		if (w->id != f->id || w->done)
			continue;
		w->done = true;
		if (ok == 1 && buf_append(w->out, d, n) == 0)
			w->ok = true;
		else
			snprintf(w->reason, sizeof(w->reason), "%.*s", ok == 1 ? 13 : (int)n,
			    ok == 1 ? "answer too long" : (const char *)d);
		break;
	}
	pthread_cond_broadcast(&tokenc_cond);
	pthread_mutex_unlock(&tokenc_lock);
}

void
tokenc_stop(void)
{
	pthread_mutex_lock(&tokenc_lock);
	tokenc_ctl = -1;
	for (struct tokenc_wait *w = tokenc_waits; w != NULL; w = w->next) {
		if (!w->done) {
			w->done = true;
			snprintf(w->reason, sizeof(w->reason), "failed: the server is stopping");
		}
	}
	pthread_cond_broadcast(&tokenc_cond);
	pthread_mutex_unlock(&tokenc_lock);
}
