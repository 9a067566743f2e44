/*
 * probe_report: what `smtpgate probe` prints once a run is over: the
 * result, capabilities before and after TLS, the certificate chain, AUTH
 * results, the test message, the findings and the transcript, as text for
 * a person (or the findings alone: --quiet) or as one JSON document
 * (probe_priv.h).
 */
#include "diag/probe_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static void
probe_report_caps(FILE *out, const char *title, json_t *caps)
{
	const char *key;
	json_t *v;

	if (caps == NULL)
		return;
	fprintf(out, "%s:", title);
	json_object_foreach(caps, key, v)
	{
		if (json_is_true(v))
			fprintf(out, " %s", key);
		else if (json_is_integer(v))
			fprintf(out, " %s=%lld", key, (long long)json_integer_value(v));
	}
	v = json_object_get(caps, "mechanisms");
	if (json_array_size(v) > 0) {
		size_t i;
		json_t *m;

		fprintf(out, " (AUTH");
		json_array_foreach(v, i, m) fprintf(out, " %s", json_string_value(m));
		fprintf(out, ")");
	}
	fprintf(out, "\n");
}

/* "2 errors, 1 warning (tls-version-too-old, ...)" or "no problems found":
 * the one line a reader needs first, at the top, and again after the
 * transcript, where a terminal leaves the reader. */
static void
probe_report_result(FILE *out, const struct findings *f)
{
	static const char *const names[] = {"info", "warning", "error"};
	size_t count[3] = {0, 0, 0};
	const char *sep = "";

	for (size_t i = 0; i < f->n; i++)
		count[f->v[i].severity]++;
	if (f->n == 0) {
		fprintf(out, "Result: no problems found\n");
		return;
	}
	fprintf(out, "Result:");
	for (int s = FINDING_ERROR; s >= FINDING_INFO; s--) {
		if (count[s] == 0)
			continue;
		fprintf(out, "%s %zu %s%s", sep, count[s], names[s],
		    count[s] == 1 || s == FINDING_INFO ? "" : "s");
		sep = ",";
	}
	fprintf(out, " (");
	sep = "";
	for (int s = FINDING_ERROR; s >= FINDING_INFO; s--) {
		for (size_t i = 0; i < f->n; i++) {
			if ((int)f->v[i].severity != s)
				continue;
			fprintf(out, "%s%s", sep, f->v[i].kb->id);
			sep = ", ";
		}
	}
	fprintf(out, ")\n");
}

/* What the session showed: banner, capabilities, TLS and chain, AUTH, the
 * test message. */
static void
probe_report_summary(struct probe *p, FILE *out)
{
	if (p->banner[0])
		fprintf(out, "Banner: %s\n", p->banner);
	probe_report_caps(out, "Capabilities before TLS", p->caps_before);
	probe_report_caps(out, "Capabilities after TLS", p->caps_after);
	if (p->tls != NULL) {
		json_t *chain = json_object_get(p->tls, "chain"), *cert;
		size_t i;

		fprintf(out, "TLS: %s, %s, certificate %s\n",
		    json_string_value(json_object_get(p->tls, "version")),
		    json_string_value(json_object_get(p->tls, "cipher")),
		    json_is_true(json_object_get(p->tls, "verified")) ? "verified"
		                                                      : "NOT verified");
		json_array_foreach(chain, i, cert)
		{
			fprintf(out, "  %zu: %s\n     issuer %s, not after %s\n", i,
			    json_string_value(json_object_get(cert, "subject")),
			    json_string_value(json_object_get(cert, "issuer")),
			    json_is_string(json_object_get(cert, "not_after"))
			        ? json_string_value(json_object_get(cert, "not_after"))
			        : "?");
		}
	}
	if (json_array_size(p->auth) > 0) {
		size_t i;
		json_t *a;

		json_array_foreach(p->auth, i, a)
		{
			fprintf(out, "AUTH %s: %s (%s)\n",
			    json_string_value(json_object_get(a, "mechanism")),
			    json_string_value(json_object_get(a, "result")),
			    json_string_value(json_object_get(a, "reply")));
		}
	}
	if (p->message != NULL)
		fprintf(out, "Test message: %s\n",
		    json_is_true(json_object_get(p->message, "accepted")) ? "accepted" : "refused");
}

/*
 * The result line first, then the summary and the findings, and the
 * transcript last: a session that works is some 200 lines of transcript,
 * and a reader looks at the top of a page (and the bottom of a terminal,
 * where the result line is repeated). With quiet: the findings alone.
 */
void
probe_report_text(struct probe *p, FILE *out)
{
	if (p->o->quiet) {
		findings_print(out, &p->f);
		return;
	}
	fprintf(
	    out, "smtpgate probe %s port %s (%s)\n", p->o->host, p->port, probe_mode_name(p->mode));
	probe_report_result(out, &p->f);
	fprintf(out, "\n");
	if (p->banner[0] || p->tls != NULL || json_array_size(p->auth) > 0) {
		probe_report_summary(p, out);
		fprintf(out, "\n");
	}
	if (p->f.n > 0)
		findings_print(out, &p->f);
	fprintf(out, "Transcript (S: received, C: sent, *: what the probe did):\n");
	for (size_t i = 0; i < p->t.n; i++) {
		const struct client_transcript_entry *e = &p->t.v[i];

		fprintf(out, "%6lld ms %s %s\n", e->ms,
		    e->dir == 'S'       ? "S:"
		        : e->dir == 'C' ? "C:"
		                        : "* ",
		    e->text);
	}
	if (p->t.truncated)
		fprintf(out, "(transcript cut at its limit)\n");
	fprintf(out, "\n");
	probe_report_result(out, &p->f);
}

void
probe_report_json(struct probe *p, FILE *out)
{
	json_t *tr = json_array(), *root;
	char *s;

	for (size_t i = 0; i < p->t.n; i++) {
		const struct client_transcript_entry *e = &p->t.v[i];
		char dir[2] = {e->dir, '\0'};

		json_array_append_new(tr,
		    json_pack(
		        "{s:s, s:s, s:I}", "dir", dir, "text", e->text, "ms", (json_int_t)e->ms));
	}
	/* host is the command line's bytes: escaped when not UTF-8
	 * (finding_json_text), so such a name cannot make the report fail; the
	 * port was checked to be a number (probe_cmd_target) */
	root = json_pack("{s:o, s:o, s:s, s:s?, s:o, s:O?, s:{s:O?, s:O?}, s:O, s:O?, s:o}", "host",
	    finding_json_text(p->o->host), "port", json_integer(strtol(p->port, NULL, 10)), "mode",
	    probe_mode_name(p->mode), "banner", p->banner[0] ? p->banner : NULL, "transcript", tr,
	    "tls", p->tls, "capabilities", "before_tls", p->caps_before, "after_tls", p->caps_after,
	    "auth", p->auth, "message", p->message, "findings", findings_json(&p->f));
	if (root == NULL)
		abort(); /* a bug: every string above is ASCII or escaped */
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fprintf(out, "%s\n", s);
	free(s);
	json_decref(root);
}
