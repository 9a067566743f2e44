/*
 * json_out: times in --json documents as RFC 3339 UTC strings. Files and
 * APIs that store times (SPOOL/bans.json, the passwd file, the [admin]
 * API) keep their unix seconds; the commands convert when they print.
 */
#include "cmd/json_out.h"

#include <time.h>

json_t *
json_out_time(int64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	char s[32];

	if (unix_s == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(s);
}

void
json_out_time_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v != NULL && json_is_integer(v))
		json_object_set_new(obj, key, json_out_time((int64_t)json_integer_value(v)));
}
