/*
 * json_out: the one rule of every `--json` document (smtpgate(8), "JSON
 * output"): numbers are JSON numbers, times are RFC 3339 UTC strings
 * ("2026-12-07T11:05:20Z"), null where unknown or not set.
 */
#ifndef SG_CMD_JSON_OUT_H
#define SG_CMD_JSON_OUT_H

#include <jansson.h>
#include <stdint.h>

/* A new reference: the RFC 3339 UTC string of unix_s, or null when unix_s
 * is 0 (not set) or not representable. */
json_t *json_out_time(int64_t unix_s);
/* Replaces the integer member key of obj (unix seconds), if present, by
 * json_out_time of it. */
void json_out_time_member(json_t *obj, const char *key);

#endif
