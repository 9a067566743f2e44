/*
 * user_list_cmd: `smtpgate user list [USER] [--json]` (user_cmd_priv.h):
 * a header row, then one tab-separated line (or JSON object) per credential
 * with its schemes, label, dates and state. Each is joined with its last use from the server's state file
 * (`FILE.lastuse`, auth/lastuse.h), matched by user, label and created, so
 * a re-made app password does not inherit an old last use.
 */
#include "cmd/user_cmd_priv.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/lastuse.h"
#include "auth/passwd_file.h"
#include "auth/pwscheme.h"
#include "lib/xalloc.h"
#include "cmd/json_out.h"

static json_t *
user_list_cmd_json_time(const char *unix_time)
{
	return unix_time != NULL ? json_out_time(strtoll(unix_time, NULL, 10)) : json_null();
}

/* FILE.lastuse, written by the server (auth/lastuse.h). */
static struct lastuse_rec *
user_list_cmd_read_lastuse(const char *file, size_t *n_r)
{
	struct lastuse_rec *recs = NULL;
	char err[1024], *path = xmalloc(strlen(file) + sizeof(LASTUSE_SUFFIX));

	memcpy(path, file, strlen(file));
	memcpy(path + strlen(file), LASTUSE_SUFFIX, sizeof(LASTUSE_SUFFIX));
	if (lastuse_read(path, &recs, n_r, err, sizeof(err)) == -1) {
		user_cmd_err("%s (last use not shown)", err);
		recs = NULL;
		*n_r = 0;
	}
	free(path);
	return recs;
}

int
user_list_cmd_run(const struct user_cmd_opts *o)
{
	struct passwd_file *pf = user_cmd_load(o, false);
	json_t *doc = NULL, *arr = NULL;
	struct lastuse_rec *uses = NULL;
	size_t nuses = 0;
	int64_t now = (int64_t)time(NULL);
	int r = USER_CMD_FAILED;

	if (pf == NULL)
		return USER_CMD_USAGE;
	uses = user_list_cmd_read_lastuse(o->file, &nuses);
	if (o->json) {
		arr = json_array();
		doc = json_pack("{s:s, s:o}", "file", o->file, "credentials", arr);
	} else {
		printf("USER\tSCHEMES\tLABEL\tCREATED\tSTATE\tEXPIRES\tLAST-USE\tCLIENT\n");
	}
	for (size_t i = 0; i < pf->nentries; i++) {
		const struct passwd_entry *e = &pf->entries[i];
		const char *label, *created, *expires, *senders, *state = "-";
		const struct lastuse_rec *use;
		bool scram1;
		char when[64], until[64], used[64], usetime[32];

		if (e->raw != NULL || (o->user != NULL && strcmp(e->user, o->user) != 0))
			continue;
		label = passwd_entry_get(e, "label");
		created = passwd_entry_get(e, "created");
		expires = passwd_entry_get(e, "expires");
		scram1 = passwd_entry_get(e, "scram1") != NULL;
		senders = passwd_entry_get(e, "senders");
		use = lastuse_find(uses, nuses, e->user, label, created);
		if (passwd_entry_is_locked(e))
			state = "locked";
		else if (passwd_entry_is_expired(e, now))
			state = "expired";
		if (o->json) {
			json_t *schemes = json_pack("[s]", pwscheme_name(e->scheme)), *sl;
			json_t *obj;

			if (scram1)
				json_array_append_new(schemes, json_string("SCRAM-SHA-1"));
			sl = json_array();
			for (const char *p = senders; p != NULL && *p != '\0';) {
				size_t k = strcspn(p, ",");

				if (k > 0)
					json_array_append_new(sl, json_stringn(p, k));
				p += k + (p[k] == ',');
			}
			obj = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:i, s:o}",
			    "user", e->user, "scheme", pwscheme_name(e->scheme), "schemes", schemes,
			    "label", label != NULL ? json_string(label) : json_null(), "created",
			    user_list_cmd_json_time(created), "expires",
			    user_list_cmd_json_time(expires), "locked", passwd_entry_is_locked(e),
			    "expired", passwd_entry_is_expired(e, now), "active",
			    passwd_entry_is_active(e, now), "line", e->line, "senders", sl);
			json_object_set_new(obj, "last_use",
			    use != NULL ? json_pack("{s:o, s:s}", "time", json_out_time(use->time),
			                      "client", use->client)
			                : json_null());
			json_array_append_new(arr, obj);
			continue;
		}
		user_cmd_format_time(created, when, sizeof(when));
		user_cmd_format_time(expires, until, sizeof(until));
		if (use != NULL)
			snprintf(usetime, sizeof(usetime), "%lld", (long long)use->time);
		user_cmd_format_time(use != NULL ? usetime : NULL, used, sizeof(used));
		printf("%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e->user, pwscheme_name(e->scheme),
		    scram1 ? ",SCRAM-SHA-1" : "", label != NULL ? label : "-", when, state, until,
		    used, use != NULL && use->client[0] != '\0' ? use->client : "-");
	}
	if (doc != NULL) {
		if (json_dumpf(doc, stdout, JSON_INDENT(2)) == -1)
			goto fail;
		putchar('\n');
	}
	r = fflush(stdout) == 0 ? USER_CMD_OK : USER_CMD_FAILED;
fail:
	json_decref(doc);
	lastuse_recs_free(uses, nuses);
	passwd_file_free(pf);
	return r;
}
