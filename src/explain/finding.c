/*
 * finding: findings lists and knowledge-base lookup.
 */
#include "explain/finding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/xalloc.h"

static const struct finding_kb *const finding_tables[] = {
    finding_kb_probe,
    finding_kb_dns,
    finding_kb_audit,
};

const struct finding_kb *
finding_kb_find(const char *id)
{
	for (size_t t = 0; t < sizeof(finding_tables) / sizeof(finding_tables[0]); t++) {
		for (const struct finding_kb *k = finding_tables[t]; k->id != NULL; k++) {
			if (strcmp(k->id, id) == 0)
				return k;
		}
	}
	return NULL;
}

const char *
finding_severity_name(enum finding_severity s)
{
	switch (s) {
	case FINDING_INFO:
		return "info";
	case FINDING_WARNING:
		return "warning";
	case FINDING_ERROR:
		return "error";
	}
	return "error";
}

void
findings_init(struct findings *f)
{
	f->v = NULL;
	f->n = 0;
}

void
findings_free(struct findings *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].evidence);
	free(f->v);
	findings_init(f);
}

static void findings_vadd(struct findings *f, const char *id, int sev, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void
findings_vadd(struct findings *f, const char *id, int sev, const char *fmt, va_list ap)
{
	const struct finding_kb *kb = finding_kb_find(id);
	char *ev = NULL;

	if (kb == NULL) {
		fprintf(stderr, "smtpgate: bug: unknown finding id \"%s\"\n", id);
		abort();
	}
	if (fmt != NULL && vasprintf(&ev, fmt, ap) == -1)
		abort();
	f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
	f->v[f->n].kb = kb;
	f->v[f->n].severity = sev < 0 ? kb->severity : (enum finding_severity)sev;
	f->v[f->n].evidence = ev;
	f->n++;
}

void
findings_add(struct findings *f, const char *id, const char *evidence_fmt, ...)
{
	va_list ap;

	va_start(ap, evidence_fmt);
	findings_vadd(f, id, -1, evidence_fmt, ap);
	va_end(ap);
}

void
findings_add_severity(
    struct findings *f, const char *id, enum finding_severity sev, const char *evidence_fmt, ...)
{
	va_list ap;

	va_start(ap, evidence_fmt);
	findings_vadd(f, id, (int)sev, evidence_fmt, ap);
	va_end(ap);
}

bool
findings_has(const struct findings *f, const char *id)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->v[i].kb->id, id) == 0)
			return true;
	}
	return false;
}

bool
findings_has_error(const struct findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->v[i].severity == FINDING_ERROR)
			return true;
	}
	return false;
}

json_t *
finding_json_text(const char *s)
{
	json_t *j = json_string(s);

	return j != NULL ? j : log_json_string(s, strlen(s));
}

json_t *
findings_json(const struct findings *f)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < f->n; i++) {
		const struct finding *x = &f->v[i];

		/* evidence quotes what was seen (a name from the command line
		 * or a certificate): escaped, or one byte that is not UTF-8
		 * would drop the whole finding */
		json_array_append_new(arr,
		    json_pack("{s:s, s:s, s:o?, s:s, s:s}", "id", x->kb->id, "severity",
		        finding_severity_name(x->severity), "evidence",
		        x->evidence != NULL ? finding_json_text(x->evidence) : NULL, "cause",
		        x->kb->cause, "fix", x->kb->fix));
	}
	return arr;
}

void
findings_print(FILE *out, const struct findings *f)
{
	static const enum finding_severity order[] = {FINDING_ERROR, FINDING_WARNING, FINDING_INFO};

	if (f->n == 0) {
		fprintf(out, "No problems found.\n");
		return;
	}
	for (size_t o = 0; o < 3; o++) {
		for (size_t i = 0; i < f->n; i++) {
			const struct finding *x = &f->v[i];

			if (x->severity != order[o])
				continue;
			fprintf(out, "[%s] %s\n", finding_severity_name(x->severity), x->kb->id);
			if (x->evidence != NULL)
				fprintf(out, "  seen:  %s\n", x->evidence);
			fprintf(out, "  cause: %s\n  fix:   %s\n\n", x->kb->cause, x->kb->fix);
		}
	}
}
