/*
 * certwatch: certificates renewed on disk reach new connections without a
 * restart. The parent (server/parent.c) looks at every [tls] cert and key
 * file it loaded once a second (stat of the path and of what a link points
 * to: ACME clients rename a new file into place or, as certbot does, point
 * a link at a new file in archive/); when a change has settled (the same
 * look twice in a row, so that a cert written a moment before its key is
 * not judged half-way), it copies the files as a reload would, checks the
 * pairs exactly as `serve --check` does, and hands back a new vault: the
 * files in force with the new certificate and key copies, which the parent
 * hands to the smtp process. New connections use them; open sessions keep
 * the context they started with. A pair that fails is refused with a
 * tls_cert_refused event naming the file and the reason (the words of
 * `serve --check`), and the files in force stay. Every pair in force is
 * logged as tls_cert_loaded (subject, serial, notAfter) at start, after a
 * reload and after a renewal.
 */
#ifndef SG_SERVER_CERTWATCH_H
#define SG_SERVER_CERTWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conf;
struct vault;
struct certwatch;

#define CERTWATCH_PERIOD_MS 1000

/* What stat says of one path; equal marks: nothing to look at. */
struct certwatch_mark {
	int err; /* errno of stat, 0 when it is there */
	dev_t dev;
	ino_t ino;
	off_t size;
	long long mtime_ns, ctime_ns;
	ino_t link_ino; /* lstat: the link itself, when the path is one */
	long long link_ctime_ns;
};

enum certwatch_step {
	CERTWATCH_QUIET, /* as last checked */
	CERTWATCH_SETTLING, /* changed since the last look: look again */
	CERTWATCH_CHECK, /* changed, and the same as the last look: check it */
};

/* The files of c's [tls] pairs that v holds (the configuration at path in
 * force), logged as tls_cert_loaded with trigger ("start", "reload"). */
struct certwatch *certwatch_new(
    const char *path, const struct conf *c, const struct vault *v, const char *trigger);
void certwatch_free(struct certwatch *w);

/* Milliseconds until certwatch_tick wants to run; -1: never (no file). */
long long certwatch_due_in(const struct certwatch *w, long long now_ms);

/* Looks at the files when due. A new vault (in_force with the renewed
 * files in place, checked) to hand over and keep, or NULL: nothing
 * changed, not settled, or refused (logged). */
struct vault *certwatch_tick(struct certwatch *w, const struct vault *in_force, long long now_ms);

/* stat and lstat of path. */
void certwatch_mark_of(const char *path, struct certwatch_mark *m_r);
bool certwatch_mark_equal(const struct certwatch_mark *a, const struct certwatch_mark *b);
/* The decision, from the n marks of this look: updates seen (the last
 * look) and tried (the last checked). */
enum certwatch_step certwatch_step(size_t n, const struct certwatch_mark *now,
    struct certwatch_mark *seen, struct certwatch_mark *tried);

#endif
