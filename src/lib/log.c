/*
 * log: JSON-lines logger. The target fd is shared by all threads; each line is
 * built in memory and written with one write(2) on an O_APPEND descriptor.
 */
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static char *log_path;
static enum log_level log_min = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = {"debug", "info", "notice", "warning", "error", "alert"};

const char *
log_level_name(enum log_level level)
{
	return log_names[level];
}

int
log_open(const char *target)
{
	int fd;

	if (target == NULL || strcmp(target, "stderr") == 0) {
		log_fd = 2;
		return 0;
	}
	fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	pthread_mutex_lock(&log_lock);
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	free(log_path);
	log_path = strdup(target);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return;
	pthread_mutex_lock(&log_lock);
	/* dup2 keeps the descriptor number stable for concurrent writers */
	dup2(fd, log_fd);
	close(fd);
	pthread_mutex_unlock(&log_lock);
}

void
log_set_level(enum log_level min)
{
	log_min = min;
}

void
log_event(enum log_level level, const char *event, uint64_t session, const char *fields, ...)
{
	struct timeval tv;
	struct tm tm;
	char ts[64];
	json_t *obj = NULL, *extra;
	json_error_t err;
	va_list ap;
	char *line;
	size_t len;

	if (level < log_min)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (long)(tv.tv_usec / 1000) % 1000);
	obj = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", log_names[level], "event", event);
	if (obj == NULL)
		return;
	if (session != 0)
		json_object_set_new(obj, "session", json_integer((json_int_t)session));
	if (fields != NULL) {
		va_start(ap, fields);
		extra = json_vpack_ex(&err, 0, fields, ap);
		va_end(ap);
		if (extra != NULL) {
			json_object_update(obj, extra);
			json_decref(extra);
		} else {
			json_object_set_new(obj, "log_error", json_string(err.text));
		}
	}
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(obj);
	if (line == NULL)
		return;
	len = strlen(line);
	line[len] = '\n'; /* overwrite the NUL; json_dumps gives len+1 bytes */
	(void)!write(log_fd, line, len + 1);
	free(line);
}
