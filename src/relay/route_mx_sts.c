/*
 * route_mx_sts: the MTA-STS policy of a plan's domain (RFC 8461), cached
 * in two levels: memory (ROUTE_MX_STS_CACHE_MAX domains, under sts_lock)
 * and, with conf.sts_cache_dir, one file per domain on disk (below), read
 * on a miss in memory, e.g. after a restart. Fetches and disk I/O run
 * without sts_lock.
 */
#include "relay/route_mx.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dns/dns_name.h"
#include "dns/mtasts_fetch.h"
#include "lib/fsutil.h"
#include "lib/xalloc.h"
#include "relay/route_mx_priv.h"

#define ROUTE_MX_STS_ADDRS_MAX 8 /* addresses of mta-sts.DOMAIN given to curl */

/* ---- memory ------------------------------------------------------------------- */

void
route_mx_sts_entry_clear(struct route_mx_sts_entry *e)
{
	for (size_t i = 0; i < e->n_mx; i++)
		free(e->mx[i]);
	e->n_mx = 0;
}

/* Expired (RFC 8461 3.2 max_age), or fetched in the future (a clock set back by
 * more than a day: the age is unknown). */
static bool
route_mx_sts_is_expired(time_t fetched, unsigned long max_age, time_t now)
{
	return now >= fetched + (time_t)max_age || now < fetched - 86400;
}

/* The entry for domain, or NULL; drops it when expired. Under sts_lock. */
static struct route_mx_sts_entry *
route_mx_sts_find(struct route_mx *mx, const char *domain, time_t now)
{
	for (size_t i = 0; i < mx->nsts; i++) {
		struct route_mx_sts_entry *e = &mx->sts[i];

		if (strcmp(e->domain, domain) != 0)
			continue;
		if (route_mx_sts_is_expired(e->fetched, e->max_age, now)) {
			route_mx_sts_entry_clear(e);
			mx->sts[i] = mx->sts[--mx->nsts];
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Stores a fetched policy (replacing the domain's entry). Under sts_lock. */
static struct route_mx_sts_entry *
route_mx_sts_store(struct route_mx *mx, const char *domain, const char *id,
    const struct mtasts_policy *p, time_t now)
{
	struct route_mx_sts_entry *e = NULL;

	for (size_t i = 0; i < mx->nsts && e == NULL; i++)
		if (strcmp(mx->sts[i].domain, domain) == 0)
			e = &mx->sts[i];
	if (e == NULL && mx->nsts < ROUTE_MX_STS_CACHE_MAX) {
		mx->sts = xrealloc(mx->sts, (mx->nsts + 1) * sizeof(*mx->sts));
		e = &mx->sts[mx->nsts++];
		memset(e, 0, sizeof(*e));
	}
	if (e == NULL) {
		/* full: the entry that expires first makes room */
		e = &mx->sts[0];
		for (size_t i = 1; i < mx->nsts; i++)
			if (mx->sts[i].fetched + (time_t)mx->sts[i].max_age <
			    e->fetched + (time_t)e->max_age)
				e = &mx->sts[i];
	}
	route_mx_sts_entry_clear(e);
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->mode = strcmp(p->mode, "enforce") == 0 ? ROUTE_MX_STS_ENFORCE
	    : strcmp(p->mode, "testing") == 0     ? ROUTE_MX_STS_TESTING
	                                          : ROUTE_MX_STS_NONE;
	e->max_age = p->max_age;
	e->fetched = now;
	for (size_t i = 0; i < p->n_mx && i < MTASTS_MX_MAX; i++)
		e->mx[e->n_mx++] = xstrdup(p->mx[i]);
	return e;
}

/* ---- the disk cache (doc/spool.md, "mta-sts/") ------------------------------------ */

/*
 * The second level of the cache, so that a policy survives a restart (RFC
 * 8461 5.1, 10.2: the protection against a hidden TXT record or a blocked
 * fetch rests on the cached policy). One file per domain, DIR/DOMAIN, a
 * JSON object: {"smtpgate-mta-sts": 1, "domain", "id", "fetched", "policy"}
 * where policy is the text as fetched (parsed again when read, by the same
 * parser). Written with fs_write_atomic (temporary ".DOMAIN.tmp-XXXXXX"
 * in DIR, fsync, rename, fsync DIR); a temporary name starts with a dot,
 * which no domain does. A file that is unreadable, does not parse or has expired is
 * ignored (overwritten by the next fetch, removed by the next scan).
 */

#define ROUTE_MX_STS_TMP_STALE 3600 /* seconds before a temporary file is a crash's leftover */
#define ROUTE_MX_STS_RESCAN 600 /* seconds between scans when the folder is full */

/* A lower-case DNS name that is safe as a file name in the cache folder:
 * letters, digits, '-', '_' and '.', no leading dot, no empty label (so
 * never "." or ".."), no '/'. Anything else is not cached on disk. */
static bool
route_mx_sts_name_is_safe(const char *domain)
{
	size_t n = strlen(domain);

	if (n == 0 || n >= ROUTE_MX_NAME_MAX || domain[0] == '.' || strstr(domain, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = domain[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		        c == '.'))
			return false;
	}
	return dns_name_is_valid(domain);
}

static bool
route_mx_sts_id_is_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MTASTS_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]))
			return false; /* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
	return true;
}

/*
 * Reads and checks the policy file text of domain: 0 with *id_r, *fetched_r
 * and p_r filled in (p_r freed by the caller in both cases), -1 with a static
 * *why_r. Pure but for the clock value now.
 */
int
route_mx_sts_file_parse(const char *domain, const char *text, size_t len, time_t now,
    char id_r[MTASTS_ID_MAX + 1], time_t *fetched_r, struct mtasts_policy *p_r, const char **why_r)
{
	json_t *o = NULL, *v;
	json_error_t je;
	const char *errstr;
	size_t line;
	int ret = -1;

	memset(p_r, 0, sizeof(*p_r));
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o)) {
		*why_r = "not a JSON object";
		goto fail;
	}
	v = json_object_get(o, "smtpgate-mta-sts");
	if (!json_is_integer(v) || json_integer_value(v) != ROUTE_MX_STS_FILE_VERSION) {
		*why_r = "unknown version";
		goto fail;
	}
	v = json_object_get(o, "domain");
	if (!json_is_string(v) || strcmp(json_string_value(v), domain) != 0) {
		*why_r = "domain does not match the file name";
		goto fail;
	}
	v = json_object_get(o, "id");
	if (!json_is_string(v) || !route_mx_sts_id_is_valid(json_string_value(v))) {
		*why_r = "bad id";
		goto fail;
	}
	snprintf(id_r, MTASTS_ID_MAX + 1, "%s", json_string_value(v));
	v = json_object_get(o, "fetched");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		*why_r = "bad fetched";
		goto fail;
	}
	*fetched_r = (time_t)json_integer_value(v);
	v = json_object_get(o, "policy");
	if (!json_is_string(v) || json_string_length(v) > MTASTS_POLICY_MAX) {
		*why_r = "bad policy";
		goto fail;
	}
	if (mtasts_policy_parse(json_string_value(v), json_string_length(v), p_r, &errstr, &line) ==
	    -1) {
		*why_r = "the policy does not parse";
		goto fail;
	}
	if (route_mx_sts_is_expired(*fetched_r, p_r->max_age, now)) {
		*why_r = "expired";
		goto fail;
	}
	ret = 0;
fail:
	json_decref(o);
	return ret;
}

char *
route_mx_sts_file_format(
    const char *domain, const char *id, time_t fetched, const char *body, size_t len)
{
	json_t *o, *pol = json_stringn(body, len); /* NULL when not UTF-8 */
	char *text;

	if (pol == NULL)
		return NULL;
	o = json_pack("{s:i, s:s, s:s, s:I, s:o}", "smtpgate-mta-sts", ROUTE_MX_STS_FILE_VERSION,
	    "domain", domain, "id", id, "fetched", (json_int_t)fetched, "policy", pol);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* DIR/DOMAIN into buf; false when the name is not safe or too long. */
static bool
route_mx_sts_path(const struct route_mx *mx, const char *domain, char *buf, size_t size)
{
	int n;

	if (mx->conf.sts_cache_dir == NULL || !route_mx_sts_name_is_safe(domain))
		return false;
	n = snprintf(buf, size, "%s/%s", mx->conf.sts_cache_dir, domain);
	return n > 0 && (size_t)n < size;
}

/*
 * The text of path, a regular file of at most ROUTE_MX_STS_FILE_MAX bytes,
 * malloc'd and NUL-terminated; NULL otherwise. Not through a symbolic link,
 * and never blocking on a FIFO someone put there.
 */
static char *
route_mx_sts_read(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	char *text = NULL;
	size_t got = 0;

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > ROUTE_MX_STS_FILE_MAX)
		goto out;
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shorter than fstat said: parsed as it is */
		got += (size_t)r;
	}
	text[got] = '\0';
	*len_r = got;
out:
	close(fd);
	return text;
}

/*
 * The unexpired policy file of domain: 0 with id_r, fetched_r and p_r (freed
 * by the caller in both cases), -1 when there is none or it is unusable;
 * *unusable_r then says whether a file was read and rejected (corrupt or
 * expired), as opposed to absent or unreadable.
 */
static int
route_mx_sts_load(struct route_mx *mx, const char *domain, time_t now, char id_r[MTASTS_ID_MAX + 1],
    time_t *fetched_r, struct mtasts_policy *p_r, bool *unusable_r)
{
	char path[PATH_MAX], *text;
	size_t len = 0;
	const char *why;
	int ret;

	memset(p_r, 0, sizeof(*p_r));
	*unusable_r = false;
	if (!route_mx_sts_path(mx, domain, path, sizeof(path)))
		return -1;
	text = route_mx_sts_read(path, &len);
	if (text == NULL)
		return -1; /* ENOENT mostly; anything else: as if absent */
	ret = route_mx_sts_file_parse(domain, text, len, now, id_r, fetched_r, p_r, &why);
	*unusable_r = ret == -1;
	free(text);
	return ret;
}

/*
 * Counts the policy files of the cache folder and removes what is of no use:
 * expired or corrupt policy files and temporary files older than
 * ROUTE_MX_STS_TMP_STALE. Other names are left alone. Under disk_lock (or
 * before any thread runs).
 */
void
route_mx_sts_scan(struct route_mx *mx, time_t now)
{
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	mx->disk_scanned = now;
	d = opendir(mx->conf.sts_cache_dir);
	if (d == NULL) {
		mx->ndisk = 0;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char id[MTASTS_ID_MAX + 1];
		struct mtasts_policy p;
		time_t fetched;
		struct stat st;
		bool unusable;

		if (de->d_name[0] == '.' && strstr(de->d_name, FS_TMP_MARK) != NULL) {
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode) && now - st.st_mtime > ROUTE_MX_STS_TMP_STALE)
				(void)unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!route_mx_sts_name_is_safe(de->d_name))
			continue;
		if (route_mx_sts_load(mx, de->d_name, now, id, &fetched, &p, &unusable) == 0)
			n++;
		else if (unusable)
			(void)unlinkat(dirfd(d), de->d_name, 0); /* corrupt or expired */
		mtasts_policy_free(&p);
	}
	closedir(d);
	mx->ndisk = n;
}

/*
 * Saves a fetched, valid policy of domain (the body as fetched). Failures
 * are not errors (the policy is cached in memory): they go to note.
 */
static void
route_mx_sts_save(struct route_mx *mx, const char *domain, const char *id, time_t fetched,
    const char *body, size_t len, char *note, size_t notelen)
{
	char path[PATH_MAX], *text = NULL;
	struct stat st;
	bool exists, created = false;
	size_t max =
	    mx->conf.sts_cache_files > 0 ? mx->conf.sts_cache_files : ROUTE_MX_STS_DISK_MAX;

	if (mx->conf.sts_cache_dir == NULL)
		return;
	if (!route_mx_sts_path(mx, domain, path, sizeof(path))) {
		route_mx_note(note, notelen,
		    "MTA-STS policy kept in memory only (%s: not a safe file name)", domain);
		return;
	}
	text = route_mx_sts_file_format(domain, id, fetched, body, len);
	if (text == NULL) {
		route_mx_note(note, notelen, "MTA-STS policy kept in memory only (not UTF-8 text)");
		return;
	}
	pthread_mutex_lock(&mx->disk_lock);
	exists = lstat(path, &st) == 0;
	if (!exists && mx->ndisk >= max && fetched - mx->disk_scanned >= ROUTE_MX_STS_RESCAN)
		route_mx_sts_scan(mx, fetched); /* expired files make room */
	if (!exists && mx->ndisk >= max) {
		pthread_mutex_unlock(&mx->disk_lock);
		route_mx_note(note, notelen,
		    "MTA-STS policy kept in memory only (%zu policy files on disk, the limit)",
		    max);
		free(text);
		return;
	}
	if (!exists)
		mx->ndisk++; /* reserved; given back when the write fails */
	pthread_mutex_unlock(&mx->disk_lock);
	if (mkdir(mx->conf.sts_cache_dir, 0700) == 0)
		created = true;
	else if (errno != EEXIST)
		goto fail;
	if (created) {
		/* the new folder's entry in the spool, durable too */
		char *parent = fs_dirname(mx->conf.sts_cache_dir);
		int r = fs_fsync_dir(parent);

		free(parent);
		if (r == -1)
			goto fail;
	}
	if (fs_write_atomic(path, text, strlen(text), 0600) == -1)
		goto fail;
	free(text);
	return;
fail:
	route_mx_note(
	    note, notelen, "MTA-STS policy kept in memory only (%s: %s)", path, strerror(errno));
	if (!exists) {
		pthread_mutex_lock(&mx->disk_lock);
		if (mx->ndisk > 0)
			mx->ndisk--;
		pthread_mutex_unlock(&mx->disk_lock);
	}
	free(text);
}

/* ---- the policy in force ---------------------------------------------------------- */

static int
route_mx_sts_fetch(struct route_mx *mx, struct route_mx_call *q, const char *domain, char **body_r,
    size_t *len_r, char *err, size_t errlen)
{
	char host[ROUTE_MX_NAME_MAX + 16], *addrs[ROUTE_MX_STS_ADDRS_MAX];
	struct dns_answer a4, a6;
	size_t n = 0;
	int rc;

	if (mx->conf.ops != NULL && mx->conf.ops->fetch != NULL)
		return mx->conf.ops->fetch(mx->conf.ops->arg, domain, body_r, len_r, err, errlen);
	/* our resolver finds mta-sts.DOMAIN, as it finds the MX */
	snprintf(host, sizeof(host), "mta-sts.%s", domain);
	route_mx_query(q, host, DNS_TYPE_A, &a4);
	route_mx_query(q, host, DNS_TYPE_AAAA, &a6);
	for (size_t i = 0; i < a4.n && n < ROUTE_MX_STS_ADDRS_MAX; i++)
		addrs[n++] = a4.rr[i].text;
	for (size_t i = 0; i < a6.n && n < ROUTE_MX_STS_ADDRS_MAX; i++)
		addrs[n++] = a6.rr[i].text;
	if (n == 0) {
		snprintf(err, errlen, "%s has no address (A %s, AAAA %s)", host,
		    dns_status_name(a4.status), dns_status_name(a6.status));
		rc = -1;
	} else {
		rc = mtasts_fetch_ex(domain, addrs, n, mx->conf.sts_timeout, mx->conf.cafile,
		    mx->conf.sts_port != NULL ? (unsigned)atoi(mx->conf.sts_port) : 0, body_r,
		    len_r, err, errlen);
	}
	dns_answer_free(&a4);
	dns_answer_free(&a6);
	return rc;
}

/*
 * The id of the domain's _mta-sts TXT record into id ("" when there is
 * none to go by: absent, several records (RFC 8461 3.1: as if none), or a
 * failed look-up, which err then names).
 */
static void
route_mx_sts_record(struct route_mx_call *q, const char *domain, char id[MTASTS_ID_MAX + 1],
    char *err, size_t errlen)
{
	char name[ROUTE_MX_NAME_MAX + 16];
	struct dns_answer a;
	size_t nrec = 0;
	const char *errstr;

	id[0] = '\0';
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	route_mx_query(q, name, DNS_TYPE_TXT, &a);
	for (size_t i = 0; a.status == DNS_OK && i < a.n; i++) {
		char tmp[MTASTS_ID_MAX + 1];

		if (!mtasts_is_record(a.rr[i].text, a.rr[i].len))
			continue;
		nrec++;
		if (mtasts_record_parse(a.rr[i].text, a.rr[i].len, tmp, &errstr) == 0)
			memcpy(id, tmp, MTASTS_ID_MAX + 1);
		else
			snprintf(err, errlen, "%s: %s", name, errstr);
	}
	if (nrec > 1) {
		/* RFC 8461 3.1: several records: as if none */
		id[0] = '\0';
		route_mx_fmt(err, errlen, "%s: %zu STSv1 records", name, nrec);
	} else if (a.status != DNS_OK && a.status != DNS_NXDOMAIN && a.status != DNS_NODATA) {
		snprintf(err, errlen, "%s: %s", name, route_mx_answer_text(&a));
	}
	dns_answer_free(&a);
}

/* The cached policy of the plan's domain: memory, else the disk (read
 * without the lock). Called and returns with sts_lock held. */
static struct route_mx_sts_entry *
route_mx_sts_cached(struct route_mx *mx, struct route_mx_plan *plan, time_t now)
{
	struct route_mx_sts_entry *e = route_mx_sts_find(mx, plan->domain, now);
	char did[MTASTS_ID_MAX + 1];
	struct mtasts_policy dp;
	time_t fetched;
	bool unusable;

	if (e != NULL || mx->conf.sts_cache_dir == NULL)
		return e;
	pthread_mutex_unlock(&mx->sts_lock);
	if (route_mx_sts_load(mx, plan->domain, now, did, &fetched, &dp, &unusable) == 0) {
		pthread_mutex_lock(&mx->sts_lock);
		/* another thread may have stored it meanwhile: that one is newer */
		e = route_mx_sts_find(mx, plan->domain, now);
		if (e == NULL) {
			e = route_mx_sts_store(mx, plan->domain, did, &dp, fetched);
			plan->sts_from_disk = true;
		}
	} else {
		pthread_mutex_lock(&mx->sts_lock);
		e = route_mx_sts_find(mx, plan->domain, now);
	}
	mtasts_policy_free(&dp);
	return e;
}

/*
 * A new or changed id: fetches the policy (without the lock) and stores it;
 * the body as fetched goes to body_r and the time to *saved_at_r, for the
 * disk. A failed fetch keeps the cached policy (RFC 8461 5.1) and says so
 * in the plan's note. Called and returns with sts_lock held.
 */
static struct route_mx_sts_entry *
route_mx_sts_refresh(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan,
    const char *id, char **body_r, size_t *len_r, time_t *saved_at_r)
{
	struct route_mx_sts_entry *e;
	char ferr[400] = "";
	size_t line = 0;
	const char *errstr;
	struct mtasts_policy p;
	time_t now;

	pthread_mutex_unlock(&mx->sts_lock);
	memset(&p, 0, sizeof(p));
	if (route_mx_sts_fetch(mx, q, plan->domain, body_r, len_r, ferr, sizeof(ferr)) == -1) {
		free(*body_r);
		*body_r = NULL;
		if (ferr[0] == '\0')
			snprintf(ferr, sizeof(ferr), "fetch failed");
	} else if (mtasts_policy_parse(*body_r, *len_r, &p, &errstr, &line) == -1)
		snprintf(ferr, sizeof(ferr), "policy line %zu: %s", line, errstr);
	now = mx->ops.now(mx->ops.arg);
	pthread_mutex_lock(&mx->sts_lock);
	if (ferr[0] == '\0') {
		e = route_mx_sts_store(mx, plan->domain, id, &p, now);
		plan->sts_from_disk = false;
		*saved_at_r = now; /* written to disk by the caller, without the lock */
	} else {
		e = route_mx_sts_find(mx, plan->domain, now);
		/* RFC 8461 5.1: a failed fetch keeps the cached policy */
		snprintf(plan->sts_note, sizeof(plan->sts_note),
		    "MTA-STS policy id %s not fetched (%s): %s", id, ferr,
		    e != NULL ? "using the cached policy" : "delivering without MTA-STS");
	}
	mtasts_policy_free(&p);
	return e;
}

/*
 * A policy read from disk counts as cached: the same id is not fetched
 * again, a new id is, and it stays in force, unexpired, when the TXT record
 * is gone or the fetch fails (RFC 8461 5.1).
 */
void
route_mx_sts_apply(struct route_mx *mx, struct route_mx_call *q, struct route_mx_plan *plan)
{
	char id[MTASTS_ID_MAX + 1], err[300] = "";
	struct route_mx_sts_entry *e;
	char *body = NULL;
	size_t len = 0;
	time_t saved_at = 0;

	route_mx_sts_record(q, plan->domain, id, err, sizeof(err));
	pthread_mutex_lock(&mx->sts_lock);
	e = route_mx_sts_cached(mx, plan, mx->ops.now(mx->ops.arg));
	if (id[0] != '\0' && (e == NULL || strcmp(e->id, id) != 0)) {
		e = route_mx_sts_refresh(mx, q, plan, id, &body, &len, &saved_at);
	} else if (e != NULL) {
		plan->sts_cached = true;
		if (id[0] == '\0')
			snprintf(plan->sts_note, sizeof(plan->sts_note),
			    "no MTA-STS record%s%s; the cached policy holds until it expires",
			    err[0] ? ": " : "", err);
	} else if (err[0] != '\0') {
		snprintf(plan->sts_note, sizeof(plan->sts_note), "%s", err);
	}
	if (e != NULL) {
		plan->sts_mode = e->mode;
		snprintf(plan->sts_id, sizeof(plan->sts_id), "%s", e->id);
		for (size_t i = 0; i < plan->nhosts; i++) {
			struct route_mx_host *h = &plan->hosts[i];

			h->sts_match = false;
			for (size_t k = 0; k < e->n_mx && !h->sts_match; k++)
				h->sts_match = mtasts_mx_matches(e->mx[k], h->name);
		}
	}
	pthread_mutex_unlock(&mx->sts_lock);
	if (saved_at != 0)
		route_mx_sts_save(mx, plan->domain, id, saved_at, body, len, plan->sts_note,
		    sizeof(plan->sts_note));
	free(body);
}
