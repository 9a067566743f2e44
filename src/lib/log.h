/*
 * log: structured logs, one JSON object per line (DESIGN 5.4), written with
 * a single write(2) so lines from several threads never interleave.
 *
 * Every line has ts, level, event and, where non-zero, session. The fields
 * are given as a jansson pack format and its arguments, e.g.
 *   log_event(LOG_INFO, "auth", sid, "{s:s, s:s}", "mechanism", m, "result", "ok");
 * Never pass passwords, tokens or decoded SASL payloads.
 */
#ifndef SG_LIB_LOG_H
#define SG_LIB_LOG_H

#include <stdint.h>

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
void log_reopen(void);
void log_set_level(enum log_level min);
/* fields: NULL, or a jansson pack format producing an object. */
void log_event(enum log_level level, const char *event, uint64_t session, const char *fields, ...);
const char *log_level_name(enum log_level level);

#endif
