/*
 * metrics: counters, gauges and histograms for the Prometheus text format
 * 0.0.4, updated from many loop threads without lock contention.
 *
 * A registry holds families (name, help, type, label names) and their
 * series (one set of label values each). Every series owns a few 64-bit
 * cells; each cell exists once per shard (METRICS_SHARDS cache-line aligned
 * arrays), and a thread always writes the shard it was given on its first
 * update. Updates are relaxed atomic adds on the thread's own shard, so two
 * loop threads never write the same cache line; a scrape sums the shards
 * (a slightly stale but never torn view). More threads than shards share
 * shards, which stays correct (the adds are atomic), only slower.
 *
 * Families and series are created under the registry's mutex (rare:
 * at start or on the first use of a label value); callers keep the series
 * id for the hot path. Histogram sums are kept in nanounits (value * 1e9 as
 * an integer), exact for durations, and rendered back as a float.
 */
#ifndef SG_LIB_METRICS_H
#define SG_LIB_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct metrics;

#define METRICS_SHARDS 64
#define METRICS_CELLS 1024 /* per shard: all series of a registry together */
#define METRICS_LABELS_MAX 4
#define METRICS_BUCKETS_MAX 24

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

/* A gauge whose value is read at scrape time (thread-safe on its side). */
typedef double metrics_gauge_cb(void *arg);

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Registers a family; labels is NULL or a comma-separated list of label
 * names ("mechanism,result"); buckets (histograms only) are the upper
 * bounds, increasing, +Inf implied. A family without labels gets its one
 * series at once (so it renders 0 before any update). Returns the family
 * id. Aborts on a programming error (bad name, too many labels/buckets). */
int metrics_family(struct metrics *m, const char *name, const char *help, enum metrics_type type,
    const char *labels, const double *buckets, size_t nbuckets);
/* The series of family fam with these label values (as many as the family
 * has label names), created on first use. Returns the series id, or -1 when
 * the registry is full (updates to -1 are ignored). */
int metrics_series(struct metrics *m, int fam, const char *const *values);
/* The label-less series of a family without labels. */
int metrics_series0(struct metrics *m, int fam);

/* Hot path: lock-free, on the calling thread's shard. */
void metrics_inc(struct metrics *m, int series);
void metrics_add(struct metrics *m, int series, uint64_t n);
/* Gauges: signed deltas, summed over shards at scrape. */
void metrics_gauge_add(struct metrics *m, int series, int64_t delta);
/* Histograms: value in the family's unit (e.g. seconds), >= 0. */
void metrics_observe(struct metrics *m, int series, double value);
/* Makes a gauge series read cb(arg) at scrape instead of its deltas.
 * Thread-safe; cb NULL goes back to the deltas. cb runs on the scraping
 * thread under the registry's mutex: it must not call metrics_* itself. */
void metrics_gauge_set_cb(struct metrics *m, int series, metrics_gauge_cb *cb, void *arg);

/* Appends the text format 0.0.4 (HELP, TYPE, samples; families in
 * registration order, series in creation order). -1 when out is full. */
int metrics_render(struct metrics *m, struct buf *out) __attribute__((warn_unused_result));

#endif
