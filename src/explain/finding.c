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
    finding_kb_provider,
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

static void findings_vadd(struct findings *f, const char *id, const struct finding_reply *r,
    int sev, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void
findings_vadd(struct findings *f, const char *id, const struct finding_reply *r, int sev,
    const char *fmt, va_list ap)
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
	memset(&f->v[f->n].reply, 0, sizeof(f->v[f->n].reply));
	if (r != NULL)
		f->v[f->n].reply = *r;
	f->n++;
}

void
findings_add(struct findings *f, const char *id, const char *evidence_fmt, ...)
{
	va_list ap;

	va_start(ap, evidence_fmt);
	findings_vadd(f, id, NULL, -1, evidence_fmt, ap);
	va_end(ap);
}

void
findings_add_severity(
    struct findings *f, const char *id, enum finding_severity sev, const char *evidence_fmt, ...)
{
	va_list ap;

	va_start(ap, evidence_fmt);
	findings_vadd(f, id, NULL, (int)sev, evidence_fmt, ap);
	va_end(ap);
}

void
findings_add_reply(struct findings *f, const char *id, const struct finding_reply *r, int sev,
    const char *evidence_fmt, ...)
{
	va_list ap;

	va_start(ap, evidence_fmt);
	findings_vadd(f, id, r, sev, evidence_fmt, ap);
	va_end(ap);
}

void
finding_cause_render(
    const struct finding_kb *kb, const struct finding_reply *r, char *out, size_t outlen)
{
	static const char mark[] = "{reply}";
	const char *cause = r != NULL && r->cause != NULL ? r->cause : kb->cause;
	const char *at = strstr(cause, mark);
	char codes[40] = "";

	if (outlen == 0)
		return;
	if (at == NULL) {
		snprintf(out, outlen, "%s", cause);
		return;
	}
	/* the reply's own codes, never the ones a typical server sends */
	if (r != NULL && r->code != 0)
		snprintf(codes, sizeof(codes), r->enh[0] != '\0' ? " (%d %s)" : " (%d)", r->code,
		    r->enh);
	snprintf(out, outlen, "%.*s%s%s", (int)(at - cause), cause, codes, at + sizeof(mark) - 1);
}

const char *
finding_fix_text(const struct finding_kb *kb, const struct finding_reply *r)
{
	return r != NULL && r->fix != NULL ? r->fix : kb->fix;
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
		char cause[FINDING_CAUSE_MAX];

		finding_cause_render(x->kb, &x->reply, cause, sizeof(cause));
		/* evidence quotes what was seen (a name from the command line
		 * or a certificate): escaped, or one byte that is not UTF-8
		 * would drop the whole finding */
		json_array_append_new(arr,
		    json_pack("{s:s, s:s, s:o?, s:s, s:s, s:s*, s:s*}", "id", x->kb->id, "severity",
		        finding_severity_name(x->severity), "evidence",
		        x->evidence != NULL ? finding_json_text(x->evidence) : NULL, "cause", cause,
		        "fix", finding_fix_text(x->kb, &x->reply), "provider", x->reply.provider,
		        "help", x->reply.help));
	}
	return arr;
}

/* Evidence of several lines (a whole multi-line reply): each further line
 * under the first, indented like it. */
static void
findings_print_evidence(FILE *out, const char *ev)
{
	const char *nl;

	fputs("  seen:  ", out);
	while ((nl = strchr(ev, '\n')) != NULL) {
		fprintf(out, "%.*s\n         ", (int)(nl - ev), ev);
		ev = nl + 1;
	}
	fprintf(out, "%s\n", ev);
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
			char cause[FINDING_CAUSE_MAX];

			if (x->severity != order[o])
				continue;
			finding_cause_render(x->kb, &x->reply, cause, sizeof(cause));
			fprintf(out, "[%s] %s\n", finding_severity_name(x->severity), x->kb->id);
			if (x->evidence != NULL)
				findings_print_evidence(out, x->evidence);
			if (x->reply.provider != NULL)
				fprintf(out, "  from:  %s\n", x->reply.provider);
			fprintf(out, "  cause: %s\n  fix:   %s\n", cause,
			    finding_fix_text(x->kb, &x->reply));
			if (x->reply.help != NULL)
				fprintf(out, "  help:  %s\n", x->reply.help);
			fputc('\n', out);
		}
	}
}
