/*
 * lastuse: the last-use table and its state file.
 *
 * State: an array of records under lock; dirty when a note arrived since
 * the last write. The flusher thread sleeps until dirty, then until
 * LASTUSE_DELAY_S after its previous write (so a burst of logins costs one
 * write), serialises the table under the lock, and writes it outside the
 * lock (fs_write_atomic: temp file, fsync, rename). A write error is logged
 * once per failure streak and retried at the next note.
 *
 * Ownership: the table owns every record string; readers of a state file
 * get their own copies (lastuse_read).
 */
#include "auth/lastuse.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct lastuse {
	char *path;
	lastuse_keep_cb *keep;
	void *keep_arg;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;
	struct lastuse_rec *recs;
	size_t nrecs, cap;
	/* (user, label) -> record: open addressing, index + 1 into recs (0:
	 * empty), nslots a power of two above twice nrecs; remade when recs
	 * are pruned. A note finds its record without a pass over all. */
	size_t *slots, nslots;
	bool dirty;
	bool stopping;
	bool write_failed;
	pthread_t thread;
	bool started;
};

static void
lastuse_rec_clear(struct lastuse_rec *r)
{
	free(r->user);
	free(r->label);
	free(r->created);
	memset(r, 0, sizeof(*r));
}

void
lastuse_recs_free(struct lastuse_rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lastuse_rec_clear(&recs[i]);
	free(recs);
}

/* FNV-1a of user, a NUL and label. */
static uint64_t
lastuse_hash(const char *user, const char *label)
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)user;; p++) {
		h = (h ^ *p) * 1099511628211ULL;
		if (*p == '\0')
			break;
	}
	for (const unsigned char *p = (const unsigned char *)label; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static void
lastuse_index_put(struct lastuse *lu, size_t i)
{
	size_t m = lu->nslots - 1,
	       s = (size_t)lastuse_hash(lu->recs[i].user, lu->recs[i].label) & m;

	while (lu->slots[s] != 0)
		s = (s + 1) & m;
	lu->slots[s] = i + 1;
}

/* Remakes the index for nrecs, with room for as many again. */
static void
lastuse_index_rebuild(struct lastuse *lu)
{
	size_t want = 16;

	while (want < 4 * (lu->nrecs + 1))
		want *= 2;
	free(lu->slots);
	lu->slots = xcalloc(want, sizeof(*lu->slots));
	lu->nslots = want;
	for (size_t i = 0; i < lu->nrecs; i++)
		lastuse_index_put(lu, i);
}

static struct lastuse_rec *
lastuse_index_get(struct lastuse *lu, const char *user, const char *label)
{
	size_t m = lu->nslots - 1, s = (size_t)lastuse_hash(user, label) & m;

	for (; lu->slots[s] != 0; s = (s + 1) & m) {
		struct lastuse_rec *r = &lu->recs[lu->slots[s] - 1];

		if (strcmp(r->user, user) == 0 && strcmp(r->label, label) == 0)
			return r;
	}
	return NULL;
}

/* The order of lastuse_read's records: by (user, label, created). */
static int
lastuse_key_cmp(
    const struct lastuse_rec *r, const char *user, const char *label, const char *created)
{
	int c = strcmp(r->user, user);

	if (c == 0)
		c = strcmp(r->label, label);
	if (c == 0)
		c = strcmp(r->created, created);
	return c;
}

/* qsort: by key, the latest use first among records of one key */
static int
lastuse_rec_cmp(const void *a, const void *b)
{
	const struct lastuse_rec *x = a, *y = b;
	int c = lastuse_key_cmp(x, y->user, y->label, y->created);

	if (c == 0)
		c = x->time > y->time ? -1 : x->time < y->time;
	return c;
}

const struct lastuse_rec *
lastuse_find(const struct lastuse_rec *recs, size_t n, const char *user, const char *label,
    const char *created)
{
	size_t lo = 0, hi = n;

	if (label == NULL)
		label = "";
	if (created == NULL)
		created = "";
	/* the first record not below the key */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lastuse_key_cmp(&recs[mid], user, label, created) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && lastuse_key_cmp(&recs[lo], user, label, created) == 0 ? &recs[lo] : NULL;
}

static int
lastuse_parse(const char *path, const char *text, size_t len, struct lastuse_rec **recs_r,
    size_t *n_r, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *arr, *v;
	struct lastuse_rec *recs = NULL;
	size_t n = 0, i;

	if (doc == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return -1;
	}
	arr = json_object_get(doc, "credentials");
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "%s: no \"credentials\" array", path);
		json_decref(doc);
		return -1;
	}
	recs = xcalloc(json_array_size(arr) + 1, sizeof(*recs));
	json_array_foreach(arr, i, v)
	{
		const char *user = NULL, *label = "", *created = "", *client = "";
		json_int_t t = 0;

		if (json_unpack(v, "{s:s, s?s, s?s, s:I, s?s}", "user", &user, "label", &label,
		        "created", &created, "time", &t, "client", &client) == -1)
			continue; /* a damaged record is dropped, not the whole file */
		recs[n].user = xstrdup(user);
		recs[n].label = xstrdup(label);
		recs[n].created = xstrdup(created);
		recs[n].time = (int64_t)t;
		snprintf(recs[n].client, sizeof(recs[n].client), "%s", client);
		n++;
	}
	json_decref(doc);
	*recs_r = recs;
	*n_r = n;
	return 0;
}

int
lastuse_read(const char *path, struct lastuse_rec **recs_r, size_t *n_r, char *err, size_t errlen)
{
	size_t len = 0;
	char *text = fs_read_file(path, LASTUSE_FILE_MAX, &len);
	int r;

	*recs_r = NULL;
	*n_r = 0;
	if (text == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	r = lastuse_parse(path, text, len, recs_r, n_r, err, errlen);
	free(text);
	if (r == 0 && *n_r > 1)
		qsort(*recs_r, *n_r, sizeof(**recs_r), lastuse_rec_cmp);
	return r;
}

/* Serialises the table (under lock), dropping records keep rejects. */
static char *
lastuse_dump(struct lastuse *lu)
{
	json_t *arr = json_array(), *doc;
	char *text;
	size_t j = 0;

	for (size_t i = 0; i < lu->nrecs; i++) {
		struct lastuse_rec *r = &lu->recs[i];

		if (lu->keep != NULL && !lu->keep(lu->keep_arg, r->user, r->label, r->created)) {
			lastuse_rec_clear(r);
			continue;
		}
		json_array_append_new(arr,
		    json_pack("{s:s, s:s, s:s, s:I, s:s}", "user", r->user, "label", r->label,
		        "created", r->created, "time", (json_int_t)r->time, "client", r->client));
		lu->recs[j++] = *r;
	}
	/* the index holds positions: remade only when records went (under
	 * the lock every AUTH's note takes) */
	if (j != lu->nrecs) {
		lu->nrecs = j;
		lastuse_index_rebuild(lu);
	}
	doc = json_pack("{s:i, s:o}", "version", 1, "credentials", arr);
	text = json_dumps(doc, JSON_INDENT(1));
	json_decref(doc);
	return text;
}

static void
lastuse_write(struct lastuse *lu, const char *text)
{
	bool failed = text == NULL || fs_write_atomic(lu->path, text, strlen(text), 0600) == -1;

	pthread_mutex_lock(&lu->lock);
	if (failed && !lu->write_failed) {
		log_event(LOG_ERR, "lastuse_write_error", 0, "{s:s, s:s}", "path", lu->path,
		    "error", text == NULL ? "out of memory" : strerror(errno));
	}
	lu->write_failed = failed;
	pthread_mutex_unlock(&lu->lock);
}

static void *
lastuse_thread(void *arg)
{
	struct lastuse *lu = arg;
	struct timespec next = {0, 0}, now;
	char *text;

	pthread_mutex_lock(&lu->lock);
	for (;;) {
		while (!lu->dirty && !lu->stopping)
			pthread_cond_wait(&lu->wake, &lu->lock);
		/* at most one write per LASTUSE_DELAY_S: a burst shares it */
		while (!lu->stopping) {
			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > next.tv_sec ||
			    (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))
				break;
			(void)pthread_cond_timedwait(&lu->wake, &lu->lock, &next);
		}
		if (lu->dirty) {
			lu->dirty = false;
			text = lastuse_dump(lu);
			pthread_mutex_unlock(&lu->lock);
			lastuse_write(lu, text);
			free(text);
			clock_gettime(CLOCK_REALTIME, &next);
			next.tv_sec += LASTUSE_DELAY_S;
			pthread_mutex_lock(&lu->lock);
		}
		if (lu->stopping && !lu->dirty)
			break;
	}
	pthread_mutex_unlock(&lu->lock);
	return NULL;
}

struct lastuse *
lastuse_open(const char *path, lastuse_keep_cb *keep, void *keep_arg)
{
	struct lastuse *lu = xcalloc(1, sizeof(*lu));
	char err[512];

	lu->path = xstrdup(path);
	lu->keep = keep;
	lu->keep_arg = keep_arg;
	pthread_mutex_init(&lu->lock, NULL);
	pthread_cond_init(&lu->wake, NULL);
	if (lastuse_read(path, &lu->recs, &lu->nrecs, err, sizeof(err)) == -1) {
		/* the last-use times are a convenience: start afresh */
		log_event(LOG_WARNING, "lastuse_read_error", 0, "{s:s}", "error", err);
		lu->recs = NULL;
		lu->nrecs = 0;
	}
	lu->cap = lu->nrecs;
	lastuse_index_rebuild(lu);
	if ((errno = pthread_create(&lu->thread, NULL, lastuse_thread, lu)) != 0) {
		log_event(LOG_ERR, "lastuse_thread_error", 0, "{s:s}", "error", strerror(errno));
		lu->started = false;
	} else {
		lu->started = true;
	}
	return lu;
}

void
lastuse_close(struct lastuse *lu)
{
	if (lu == NULL)
		return;
	pthread_mutex_lock(&lu->lock);
	lu->stopping = true;
	pthread_cond_signal(&lu->wake);
	pthread_mutex_unlock(&lu->lock);
	if (lu->started)
		pthread_join(lu->thread, NULL);
	lastuse_recs_free(lu->recs, lu->nrecs);
	free(lu->slots);
	pthread_mutex_destroy(&lu->lock);
	pthread_cond_destroy(&lu->wake);
	free(lu->path);
	free(lu);
}

void
lastuse_note(struct lastuse *lu, const char *user, const char *label, const char *created,
    const char *client, int64_t when)
{
	struct lastuse_rec *r = NULL;
	bool was_dirty;

	if (lu == NULL)
		return;
	if (label == NULL)
		label = "";
	if (created == NULL)
		created = "";
	pthread_mutex_lock(&lu->lock);
	r = lastuse_index_get(lu, user, label);
	if (r == NULL) {
		if (lu->nrecs == lu->cap) {
			lu->cap = lu->cap * 2 + 16;
			lu->recs = xrealloc(lu->recs, lu->cap * sizeof(*lu->recs));
		}
		r = &lu->recs[lu->nrecs++];
		memset(r, 0, sizeof(*r));
		r->user = xstrdup(user);
		r->label = xstrdup(label);
		if (2 * lu->nrecs >= lu->nslots)
			lastuse_index_rebuild(lu);
		else
			lastuse_index_put(lu, lu->nrecs - 1);
	}
	if (r->created == NULL || strcmp(r->created, created) != 0) {
		free(r->created);
		r->created = xstrdup(created);
	}
	r->time = when;
	snprintf(r->client, sizeof(r->client), "%s", client != NULL ? client : "");
	was_dirty = lu->dirty;
	lu->dirty = true;
	pthread_mutex_unlock(&lu->lock);
	/* the flusher waits for the table to become dirty, then for its next
	 * write time: only that first change wakes it (not every AUTH, on the
	 * way to its answer) */
	if (!was_dirty)
		pthread_cond_signal(&lu->wake);
}
