/*
 * metrics: sharded counters rendered as Prometheus text (metrics.h).
 *
 * Layout: a series id is the index of its first cell. Cells of all series
 * are laid out once per shard (struct metrics_shard, METRICS_CELLS each, 64-byte
 * aligned), so each thread's writes stay in its own 8 KiB. Series and family
 * descriptors are allocated once and never move (fixed arrays of pointers),
 * so the hot path reads them without the mutex; the mutex only serialises
 * creating series, setting gauge callbacks and rendering.
 *
 * Cells per series: counter 1; gauge 1 (sum of signed deltas as uint64);
 * histogram nbuckets + 2 (per-bucket counts including +Inf, then the sum in
 * nanounits).
 */
#include "lib/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"

#define METRICS_FAMILIES_MAX 64

struct metrics_family {
	char *name;
	char *help;
	enum metrics_type type;
	char *labels[METRICS_LABELS_MAX];
	size_t nlabels;
	double buckets[METRICS_BUCKETS_MAX];
	size_t nbuckets;
	size_t ncells; /* per series */
};

struct metrics_series {
	int fam;
	size_t cell; /* its id */
	char *values[METRICS_LABELS_MAX];
	metrics_gauge_cb *cb; /* under the mutex */
	void *cbarg;
	struct metrics_series *next; /* creation order */
};

struct metrics_shard {
	_Alignas(64) uint64_t cells[METRICS_CELLS];
};

struct metrics {
	pthread_mutex_t lock;
	struct metrics_family *fams[METRICS_FAMILIES_MAX];
	size_t nfams;
	struct metrics_series *by_cell[METRICS_CELLS]; /* at each series' first cell */
	struct metrics_series *first, *last;
	size_t ncells; /* cells in use */
	struct metrics_shard *shards;
};

static _Thread_local int metrics_shard_of_thread = -1;
static unsigned metrics_next_shard;

static inline uint64_t *
metrics_cells(struct metrics *m)
{
	int s = metrics_shard_of_thread;

	if (s < 0) {
		s = (int)(__atomic_fetch_add(&metrics_next_shard, 1, __ATOMIC_RELAXED) %
		    METRICS_SHARDS);
		metrics_shard_of_thread = s;
	}
	return m->shards[s].cells;
}

struct metrics *
metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	m->shards = aligned_alloc(64, METRICS_SHARDS * sizeof(struct metrics_shard));
	if (m->shards == NULL)
		abort();
	memset(m->shards, 0, METRICS_SHARDS * sizeof(struct metrics_shard));
	return m;
}

void
metrics_free(struct metrics *m)
{
	struct metrics_series *s, *next;

	if (m == NULL)
		return;
	for (s = m->first; s != NULL; s = next) {
		next = s->next;
		for (size_t i = 0; i < METRICS_LABELS_MAX; i++)
			free(s->values[i]);
		free(s);
	}
	for (size_t i = 0; i < m->nfams; i++) {
		struct metrics_family *f = m->fams[i];

		for (size_t j = 0; j < f->nlabels; j++)
			free(f->labels[j]);
		free(f->name);
		free(f->help);
		free(f);
	}
	free(m->shards);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static bool
metrics_name_ok(const char *s)
{
	if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	}
	return true;
}

/* Caller holds the lock. */
static int
metrics_series_create(struct metrics *m, int fam, const char *const *values)
{
	const struct metrics_family *f = m->fams[fam];
	struct metrics_series *s;
	int id;

	if (m->ncells + f->ncells > METRICS_CELLS)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->fam = fam;
	for (size_t i = 0; i < f->nlabels; i++)
		s->values[i] = xstrdup(values[i]);
	id = (int)m->ncells;
	s->cell = m->ncells;
	m->ncells += f->ncells;
	m->by_cell[id] = s;
	if (m->last != NULL)
		m->last->next = s;
	else
		m->first = s;
	m->last = s;
	return id;
}

int
metrics_family(struct metrics *m, const char *name, const char *help, enum metrics_type type,
    const char *labels, const double *buckets, size_t nbuckets)
{
	struct metrics_family *f;
	int id;

	if (!metrics_name_ok(name) || m->nfams == METRICS_FAMILIES_MAX ||
	    nbuckets > METRICS_BUCKETS_MAX || (type != METRICS_HISTOGRAM && nbuckets > 0))
		abort(); /* a programming error */
	f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->type = type;
	if (labels != NULL && labels[0] != '\0') {
		char *copy = xstrdup(labels), *save = NULL;

		for (char *t = strtok_r(copy, ",", &save); t != NULL;
		     t = strtok_r(NULL, ",", &save)) {
			if (f->nlabels == METRICS_LABELS_MAX || !metrics_name_ok(t) ||
			    strcmp(t, "le") == 0)
				abort();
			f->labels[f->nlabels++] = xstrdup(t);
		}
		free(copy);
	}
	for (size_t i = 0; i < nbuckets; i++) {
		if (i > 0 && !(buckets[i] > buckets[i - 1]))
			abort();
		f->buckets[i] = buckets[i];
	}
	f->nbuckets = nbuckets;
	f->ncells = type == METRICS_HISTOGRAM ? nbuckets + 2 : 1;
	pthread_mutex_lock(&m->lock);
	id = (int)m->nfams;
	m->fams[m->nfams++] = f;
	if (f->nlabels == 0)
		(void)metrics_series_create(m, id, NULL);
	pthread_mutex_unlock(&m->lock);
	return id;
}

int
metrics_series(struct metrics *m, int fam, const char *const *values)
{
	const struct metrics_family *f;
	struct metrics_series *s;
	int id = -1;

	pthread_mutex_lock(&m->lock);
	f = m->fams[fam];
	for (size_t c = 0; c < m->ncells; c++) {
		bool same = true;

		s = m->by_cell[c];
		if (s == NULL || s->fam != fam)
			continue;
		for (size_t i = 0; i < f->nlabels && same; i++)
			same = strcmp(s->values[i], values[i]) == 0;
		if (same) {
			id = (int)c;
			goto out;
		}
	}
	id = metrics_series_create(m, fam, values);
out:
	pthread_mutex_unlock(&m->lock);
	return id;
}

int
metrics_series0(struct metrics *m, int fam)
{
	return metrics_series(m, fam, NULL);
}

void
metrics_add(struct metrics *m, int series, uint64_t n)
{
	if (series < 0)
		return;
	__atomic_fetch_add(&metrics_cells(m)[series], n, __ATOMIC_RELAXED);
}

void
metrics_inc(struct metrics *m, int series)
{
	metrics_add(m, series, 1);
}

void
metrics_gauge_add(struct metrics *m, int series, int64_t delta)
{
	metrics_add(m, series, (uint64_t)delta); /* two's complement: sums wrap back */
}

void
metrics_observe(struct metrics *m, int series, double value)
{
	const struct metrics_series *s;
	const struct metrics_family *f;
	uint64_t *cells;
	size_t b;

	if (series < 0)
		return;
	s = m->by_cell[series];
	f = m->fams[s->fam];
	if (!(value >= 0))
		value = 0;
	for (b = 0; b < f->nbuckets && value > f->buckets[b]; b++)
		;
	cells = metrics_cells(m);
	__atomic_fetch_add(&cells[series + (int)b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(
	    &cells[series + (int)f->nbuckets + 1], (uint64_t)(value * 1e9 + 0.5), __ATOMIC_RELAXED);
}

void
metrics_gauge_set_cb(struct metrics *m, int series, metrics_gauge_cb *cb, void *arg)
{
	if (series < 0)
		return;
	pthread_mutex_lock(&m->lock);
	m->by_cell[series]->cb = cb;
	m->by_cell[series]->cbarg = arg;
	pthread_mutex_unlock(&m->lock);
}

/* --- rendering ------------------------------------------------------------ */

static uint64_t
metrics_sum(struct metrics *m, size_t cell)
{
	uint64_t v = 0;

	for (size_t i = 0; i < METRICS_SHARDS; i++)
		v += __atomic_load_n(&m->shards[i].cells[cell], __ATOMIC_RELAXED);
	return v;
}

/* Go's ParseFloat reads all of these; integers print without a fraction. */
static int
metrics_put_double(struct buf *out, double v)
{
	if (isinf(v))
		return buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
	if (isnan(v))
		return buf_append_str(out, "NaN");
	return buf_printf(out, "%.15g", v);
}

/* Text format 0.0.4: in label values escape \, " and newline; in HELP
 * escape \ and newline. */
static int
metrics_put_escaped(struct buf *out, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		int rc;

		if (*s == '\\')
			rc = buf_append_str(out, "\\\\");
		else if (*s == '\n')
			rc = buf_append_str(out, "\\n");
		else if (*s == '"' && quote)
			rc = buf_append_str(out, "\\\"");
		else
			rc = buf_append(out, s, 1);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* name{a="x",b="y"[,le="..."]} */
static int
metrics_put_name(struct buf *out, const struct metrics_family *f, const struct metrics_series *s,
    const char *suffix, const char *le)
{
	bool any = f->nlabels > 0 || le != NULL;

	if (buf_printf(out, "%s%s", f->name, suffix) == -1 ||
	    (any && buf_append_str(out, "{") == -1))
		return -1;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (buf_printf(out, "%s%s=\"", i > 0 ? "," : "", f->labels[i]) == -1 ||
		    metrics_put_escaped(out, s->values[i], true) == -1 ||
		    buf_append_str(out, "\"") == -1)
			return -1;
	}
	if (le != NULL && buf_printf(out, "%sle=\"%s\"", f->nlabels > 0 ? "," : "", le) == -1)
		return -1;
	if (any && buf_append_str(out, "}") == -1)
		return -1;
	return buf_append_str(out, " ");
}

static int
metrics_render_series(struct metrics *m, struct buf *out, const struct metrics_family *f, size_t id)
{
	const struct metrics_series *s = m->by_cell[id];
	uint64_t cum = 0;
	char le[64];

	switch (f->type) {
	case METRICS_COUNTER:
		return metrics_put_name(out, f, s, "", NULL) == -1 ||
		        buf_printf(out, "%llu\n", (unsigned long long)metrics_sum(m, id)) == -1
		    ? -1
		    : 0;
	case METRICS_GAUGE:
		if (metrics_put_name(out, f, s, "", NULL) == -1)
			return -1;
		if (s->cb != NULL) {
			if (metrics_put_double(out, s->cb(s->cbarg)) == -1)
				return -1;
		} else if (buf_printf(out, "%lld", (long long)(int64_t)metrics_sum(m, id)) == -1) {
			return -1;
		}
		return buf_append_str(out, "\n");
	case METRICS_HISTOGRAM:
		for (size_t b = 0; b <= f->nbuckets; b++) {
			cum += metrics_sum(m, id + b);
			if (b < f->nbuckets)
				snprintf(le, sizeof(le), "%.15g", f->buckets[b]);
			else
				snprintf(le, sizeof(le), "+Inf");
			if (metrics_put_name(out, f, s, "_bucket", le) == -1 ||
			    buf_printf(out, "%llu\n", (unsigned long long)cum) == -1)
				return -1;
		}
		if (metrics_put_name(out, f, s, "_sum", NULL) == -1 ||
		    metrics_put_double(out, (double)metrics_sum(m, id + f->nbuckets + 1) / 1e9) ==
		        -1 ||
		    buf_append_str(out, "\n") == -1 ||
		    metrics_put_name(out, f, s, "_count", NULL) == -1 ||
		    buf_printf(out, "%llu\n", (unsigned long long)cum) == -1)
			return -1;
		return 0;
	}
	return -1;
}

int
metrics_render(struct metrics *m, struct buf *out)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	int rc = -1;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nfams; i++) {
		const struct metrics_family *f = m->fams[i];

		if (buf_printf(out, "# HELP %s ", f->name) == -1 ||
		    metrics_put_escaped(out, f->help, false) == -1 ||
		    buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]) == -1)
			goto out;
		for (const struct metrics_series *s = m->first; s != NULL; s = s->next) {
			if (s->fam == (int)i && metrics_render_series(m, out, f, s->cell) == -1)
				goto out;
		}
	}
	rc = 0;
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}
