/*
 * log: structured logs, one JSON object per line (DESIGN 5.4), written with
 * a single write(2) so lines from several threads never interleave.
 *
 * Every line has ts, level, event and, where non-zero, session. The fields
 * are given as a jansson pack format and its arguments, e.g.
 *   log_event(LOG_INFO, "auth", sid, "{s:s, s:s}", "mechanism", m, "result", "ok");
 * (the subset log.c lists: s s? s* s# s% +, n b i I f, o O, {} []).
 * Never pass passwords, tokens or decoded SASL payloads.
 *
 * Strings may hold any bytes (peer input): each one is logged in the escaped
 * form of log_escape, so no field is ever lost to bad UTF-8 and a NUL cannot
 * cut a field for a reader. A NULL for a plain s, or a string cut at
 * LOG_STRING_MAX, costs that field's content only: the event is logged with
 * "log_error" naming the problem.
 */
#ifndef SG_LIB_LOG_H
#define SG_LIB_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/buf.h"

#define LOG_STRING_MAX 65536 /* bytes of one logged string, escaped; then "..." */
#define LOG_STRING_MAX_TEXT "65536"

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_NOTICE,
	LOG_WARNING,
	LOG_ERR,
	LOG_ALERT,
};

/* "stderr" or a file path (opened O_APPEND). Returns -1 with errno set. */
int log_open(const char *target) __attribute__((warn_unused_result));
/* Re-opens the file (after rotation, on SIGHUP). */
/* Logs to fd (taken) from now on: a log file opened by another process;
 * log_reopen then does nothing (that process hands a new one). */
void log_use_fd(int fd);
/* A new descriptor of the log file (close-on-exec), or -1 for stderr. */
int log_dup_fd(void);
void log_reopen(void);
void log_set_level(enum log_level min);
/* fields: NULL, or a jansson pack format producing an object. */
void log_event(enum log_level level, const char *event, uint64_t session, const char *fields, ...);
const char *log_level_name(enum log_level level);

/*
 * Pure: appends the escaped form of p[0..n) to out. Valid UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing past U+10FFFF) is copied; each
 * byte of an invalid sequence, and NUL, becomes the four characters \xHH
 * (lower-case hex); a backslash followed by 'x' becomes \x5c. So the result
 * is valid UTF-8 without NUL, every "\x" in it is an escape, and replacing
 * each \xHH by byte HH gives p back. Stops, with whole characters appended,
 * before out->len would pass max: -1 then (or when out is full), else 0.
 */
int log_escape(const char *p, size_t n, size_t max, struct buf *out)
    __attribute__((warn_unused_result));
/* A JSON string of p[0..n) in that form (cut at LOG_STRING_MAX, "..."), for
 * an o argument built by the caller. New reference; NULL only on ENOMEM. */
json_t *log_json_string(const char *p, size_t n);

#endif
