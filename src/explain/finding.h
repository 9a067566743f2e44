/*
 * finding: the findings model shared by `smtpgate probe`, `dns` and `audit`
 * (and later the relay's delivery logs): every problem is a finding with a
 * stable id, a severity, the evidence (the reply, TLS alert or record seen)
 * and, from the knowledge base, the cause and the fix in plain words.
 *
 * The knowledge base is one table per area, each in its own file
 * (kb_probe.c, kb_dns.c, kb_audit.c, and kb_provider.c for what the big
 * providers' refusals mean) so the areas grow independently; ids are unique
 * across them and listed in doc/findings.md.
 */
#ifndef SG_EXPLAIN_FINDING_H
#define SG_EXPLAIN_FINDING_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

enum finding_severity {
	FINDING_INFO,
	FINDING_WARNING,
	FINDING_ERROR,
};

struct finding_kb {
	const char *id; /* "auth-credentials-invalid": stable, kebab-case */
	enum finding_severity severity; /* default severity */
	const char *cause; /* why it happens, in plain words */
	const char *fix; /* what to do about it */
};

/* NULL-terminated tables (the last row has id NULL). */
extern const struct finding_kb finding_kb_probe[];
extern const struct finding_kb finding_kb_dns[];
extern const struct finding_kb finding_kb_audit[];
extern const struct finding_kb finding_kb_provider[]; /* kb_provider.c */

/*
 * What a received reply adds to its finding (reply_map_explain fills it):
 * the reply's own codes, which replace "{reply}" in the knowledge base's
 * cause (so the cause quotes what the server said, never a fixed code), and
 * for a provider's known refusal (kb_provider.c) that provider's cause, fix
 * and help page. All strings but enh are static.
 */
struct finding_reply {
	int code; /* 0: the finding does not come from a reply */
	char enh[16]; /* RFC 3463, "" when none */
	const char *provider; /* NULL, or "Gmail", "Microsoft 365", ... */
	const char *cause; /* NULL: the knowledge base's */
	const char *fix; /* NULL: the knowledge base's */
	const char *help; /* NULL, or the provider's help page for this refusal */
};

struct finding {
	const struct finding_kb *kb;
	enum finding_severity severity;
	char *evidence; /* malloc'd; never holds a secret */
	struct finding_reply reply; /* code 0 and NULLs when not from a reply */
};

struct findings {
	struct finding *v;
	size_t n;
};

/* The knowledge-base row of id, or NULL. */
const struct finding_kb *finding_kb_find(const char *id);
const char *finding_severity_name(enum finding_severity s);

void findings_init(struct findings *f);
void findings_free(struct findings *f);
/* Adds finding id with the evidence (printf-style; may be NULL). An id that
 * is not in the knowledge base is a bug: abort. */
void findings_add(struct findings *f, const char *id, const char *evidence_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with an explicit severity (e.g. a warning raised to an error). */
void findings_add_severity(struct findings *f, const char *id, enum finding_severity sev,
    const char *evidence_fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same for a finding a reply caused: r (copied; NULL as findings_add)
 * says which codes its cause quotes and gives a provider's words. sev < 0:
 * the knowledge base's severity. */
void findings_add_reply(struct findings *f, const char *id, const struct finding_reply *r, int sev,
    const char *evidence_fmt, ...) __attribute__((format(printf, 5, 6)));
bool findings_has(const struct findings *f, const char *id);

#define FINDING_CAUSE_MAX 1024
/* The cause of kb as shown: r's provider cause when it has one, else kb's
 * with "{reply}" replaced by " (CODE ENH)" of r, or removed when r is NULL
 * or has no code. Writes at most outlen bytes (cut, never unterminated). */
void finding_cause_render(
    const struct finding_kb *kb, const struct finding_reply *r, char *out, size_t outlen);
/* The fix as shown: r's provider fix when it has one, else kb's. */
const char *finding_fix_text(const struct finding_kb *kb, const struct finding_reply *r);
bool findings_has_error(const struct findings *f);

/* A JSON string of s (NUL-terminated): as it is when it is UTF-8, else in
 * the escaped form of lib/log.h (log_escape), never NULL but on ENOMEM. For
 * text a peer or the command line supplied. */
json_t *finding_json_text(const char *s);
/* [{"id","severity","evidence","cause","fix"}, ...] (new reference), with
 * "provider" and "help" where a provider's knowledge explained the reply. */
json_t *findings_json(const struct findings *f);
/* Human form: one block per finding, errors first. */
void findings_print(FILE *out, const struct findings *f);

#endif
