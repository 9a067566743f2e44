/*
 * queue_cmd: `smtpgate queue` (DESIGN 5.1): inspect and manage the spool of
 * a configuration without a running server.
 *
 *   list              every message in queue/ and hold/, oldest first
 *   show ID           its envelope and the header section of the message
 *   del ID            removes it (unlink, then fsync of the folder)
 *   hold ID           moves it from queue/ to hold/ (not delivered until released)
 *   release ID        moves it back from hold/ to queue/
 *   flush             asks the running server to try every queued message now
 *
 * With a server running on the spool: del and hold take the message file's
 * flock, which the delivery scheduler holds while it delivers the message,
 * so neither acts in the middle of a delivery (they wait for it, at most
 * QUEUE_CMD_LOCK_WAIT seconds); release and flush signal the server (its pid
 * is in SPOOL/pid: SIGUSR2 rescans queue/, SIGUSR1 also retries held and
 * deferred recipients at once).
 *
 * The spool's layout and locks are queue/spool.h's, reading a message file
 * queue/spool_read.h's; nothing here writes message files.
 * Exit status: 0 done, 1 no such message (or an unreadable one), 2 usage or
 * configuration error. --json prints one JSON document on stdout; text that
 * is not UTF-8 is shown with U+FFFD so the document stays valid.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "queue/envelope.h"
#include "queue/qfile.h"
#include "queue/queue_id.h"
#include "queue/spool.h"
#include "queue/spool_read.h"

#define QUEUE_CMD_HEADERS_MAX 65536 /* bytes of header section shown */
#define QUEUE_CMD_LOCK_WAIT 60 /* seconds del/hold wait for a delivery to end */

struct queue_cmd_opts {
	const char *conf_path;
	bool json;
	const char *action;
	const char *id;
};

/* One listed message. */
struct queue_cmd_entry {
	const char *state; /* "queued" or "held" */
	struct spool_read_msg m;
};

static void
queue_cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpgate queue list -c FILE [--json]\n"
	    "       smtpgate queue show|del|hold|release ID -c FILE [--json]\n"
	    "       smtpgate queue flush -c FILE [--json]\n"
	    "\n"
	    "  list      list the messages in the spool, oldest first\n"
	    "  show      print a message's envelope and header section\n"
	    "  del       delete a message\n"
	    "  hold      keep a message from delivery until released\n"
	    "  release   return a held message to the queue\n"
	    "  flush     ask the running server to deliver every queued message now\n"
	    "            (held and deferred recipients too)\n"
	    "\n"
	    "  -c, --config FILE   the configuration (its [server] spool)\n"
	    "      --json          one JSON document on stdout\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Exit status: 0 done, 1 no such message, 2 usage or configuration error.\n");
}

static const char *
queue_cmd_state(const char *folder)
{
	return strcmp(folder, SPOOL_HOLD) == 0 ? "held" : "queued";
}

static void
queue_cmd_time(time_t t, char *out, size_t n)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%lld", (long long)t);
}

/* Length of the valid UTF-8 sequence (RFC 3629) at p, or 0. */
static size_t
queue_cmd_utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string of n bytes at p; invalid UTF-8 becomes U+FFFD. */
static json_t *
queue_cmd_json_str(const char *p, size_t n)
{
	struct buf b;
	json_t *j;

	buf_init(&b, 4 * n + 16);
	for (size_t i = 0; i < n;) {
		size_t l = queue_cmd_utf8_len((const unsigned char *)p + i, n - i);

		if (l == 0) {
			if (buf_append(&b, "\xef\xbf\xbd", 3) == -1)
				abort();
			i++;
			continue;
		}
		if (buf_append(&b, p + i, l) == -1)
			abort();
		i += l;
	}
	j = json_stringn(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return j;
}

static json_t *
queue_cmd_json_cstr(const char *s)
{
	return queue_cmd_json_str(s, strlen(s));
}

/* Prints s for a terminal: control bytes other than TAB become '?'. */
static void
queue_cmd_print_safe(FILE *f, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		fputc((c < 0x20 && c != '\t') || c == 0x7f ? '?' : c, f);
	}
}

static void
queue_cmd_print_str(FILE *f, const char *s)
{
	queue_cmd_print_safe(f, s, strlen(s));
}

static int
queue_cmd_cmp_entries(const void *a, const void *b)
{
	const struct queue_cmd_entry *x = a, *y = b;

	return strcmp(x->m.id, y->m.id);
}

/* Reads the envelopes of every message of folder into *es. */
static void
queue_cmd_collect(
    int spool_fd, const char *spool, const char *folder, struct queue_cmd_entry **es, size_t *n)
{
	char **ids = NULL;
	size_t nids = 0;

	if (spool_list(spool_fd, folder, &ids, &nids) == -1) {
		if (errno != ENOENT) /* no folder yet: the server never ran */
			fprintf(
			    stderr, "smtpgate queue: %s/%s: %s\n", spool, folder, strerror(errno));
		return;
	}
	for (size_t i = 0; i < nids; i++) {
		const char *errstr = "cannot open";
		struct spool_read_msg m;
		int fd;

		fd = spool_msg_open(spool_fd, folder, ids[i]);
		if (fd == -1 && errno == ENOENT)
			continue; /* delivered or deleted meanwhile */
		if (fd == -1 || spool_read_envelope(fd, &m, &errstr) == -1) {
			fprintf(stderr, "smtpgate queue: %s/%s/%s: %s\n", spool, folder, ids[i],
			    errstr);
			if (fd != -1)
				close(fd);
			continue;
		}
		close(fd);
		snprintf(m.id, sizeof(m.id), "%s", ids[i]);
		*es = xrealloc(*es, (*n + 1) * sizeof(**es));
		(*es)[*n].state = queue_cmd_state(folder);
		(*es)[(*n)++].m = m;
	}
	spool_list_free(ids, nids);
}

static json_t *
queue_cmd_json_rcpts(const struct envelope *e)
{
	json_t *a = json_array();

	for (size_t i = 0; i < e->nrcpts; i++)
		json_array_append_new(a, queue_cmd_json_cstr(e->rcpts[i]));
	return a;
}

/* The fields list and show have in common. */
static json_t *
queue_cmd_json_summary(const struct spool_read_msg *m, const char *state)
{
	char ts[64];

	queue_cmd_time(m->env->arrival, ts, sizeof(ts));
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "id", m->id, "state", state, "arrival",
	    ts, "size", (json_int_t)m->body_len, "sender", queue_cmd_json_cstr(m->env->sender),
	    "recipients", queue_cmd_json_rcpts(m->env));
}

static int
queue_cmd_print_json(json_t *doc)
{
	int r = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(doc);
	fputc('\n', stdout);
	return r == 0 ? 0 : 1;
}

static int
queue_cmd_list(const struct conf *c, int spool_fd, bool json)
{
	struct queue_cmd_entry *es = NULL;
	size_t n = 0;
	json_t *arr;
	char ts[64];

	if (spool_fd != -1) {
		queue_cmd_collect(spool_fd, c->spool, SPOOL_QUEUE, &es, &n);
		queue_cmd_collect(spool_fd, c->spool, SPOOL_HOLD, &es, &n);
	}
	if (n > 0)
		qsort(es, n, sizeof(*es), queue_cmd_cmp_entries);
	if (json) {
		arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, queue_cmd_json_summary(&es[i].m, es[i].state));
		queue_cmd_print_json(json_pack("{s:o}", "messages", arr));
	} else if (n == 0) {
		printf("The queue is empty.\n");
	} else {
		printf("%-18s  %-20s  %10s  %-6s  %s\n", "ID", "ARRIVAL", "SIZE", "STATE",
		    "SENDER -> RECIPIENTS");
		for (size_t i = 0; i < n; i++) {
			const struct envelope *e = es[i].m.env;

			queue_cmd_time(e->arrival, ts, sizeof(ts));
			printf("%-18s  %-20s  %10llu  %-6s  ", es[i].m.id, ts,
			    (unsigned long long)es[i].m.body_len, es[i].state);
			queue_cmd_print_str(stdout, e->sender[0] != '\0' ? e->sender : "<>");
			printf(" ->");
			for (size_t k = 0; k < e->nrcpts; k++) {
				printf(" ");
				queue_cmd_print_str(stdout, e->rcpts[k]);
			}
			printf("\n");
		}
		printf("%zu message%s\n", n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; i < n; i++)
		spool_read_clear(&es[i].m);
	free(es);
	return 0;
}

/* Reports a message that cannot be acted on: exit status 1. */
static int
queue_cmd_missing(const char *id, const char *reason, bool json)
{
	fprintf(stderr, "smtpgate queue: %s: %s\n", id, reason);
	if (json)
		queue_cmd_print_json(
		    json_pack("{s:o, s:s}", "id", queue_cmd_json_cstr(id), "error", reason));
	return 1;
}

/* Splits the header section into {name, value} objects, unfolded. */
static json_t *
queue_cmd_json_headers(const char *p, size_t n)
{
	json_t *arr = json_array();
	struct buf value;
	const char *name = NULL, *line = p, *end = p + n;
	size_t namelen = 0;

	buf_init(&value, n + 1);
	while (line < end) {
		const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
		const char *next = eol != NULL ? eol + 2 : end, *colon, *v;

		if (eol == NULL)
			eol = end;
		if ((*line == ' ' || *line == '\t') && name != NULL) {
			/* RFC 5322 2.2.3: unfolding removes the CRLF only */
			if (buf_append(&value, line, (size_t)(eol - line)) == -1)
				abort();
			line = next;
			continue;
		}
		if (name != NULL)
			json_array_append_new(arr,
			    json_pack("{s:o, s:o}", "name", queue_cmd_json_str(name, namelen),
			        "value",
			        queue_cmd_json_str(
			            value.data != NULL ? value.data : "", value.len)));
		name = NULL;
		buf_reset(&value);
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon != NULL) {
			name = line;
			namelen = (size_t)(colon - line);
			for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			if (buf_append(&value, v, (size_t)(eol - v)) == -1)
				abort();
		}
		line = next;
	}
	if (name != NULL)
		json_array_append_new(arr,
		    json_pack("{s:o, s:o}", "name", queue_cmd_json_str(name, namelen), "value",
		        queue_cmd_json_str(value.data != NULL ? value.data : "", value.len)));
	buf_free(&value);
	return arr;
}

/* The delivery state (doc/spool.md: attempts, next-try, warned, rcpt-status). */
static void
queue_cmd_json_delivery(json_t *doc, const struct envelope *e)
{
	struct qfile_rcpt *rs = xcalloc(e->nrcpts, sizeof(*rs));
	unsigned attempts;
	long long next_try, warned;
	char ts[64];
	json_t *arr = json_array();

	qfile_parse_state(e, &attempts, &next_try, &warned, rs);
	json_object_set_new(doc, "attempts", json_integer(attempts));
	/* next_try is a time or null; a message that waits for `queue flush`
	 * says so in a field of its own */
	json_object_set_new(doc, "waits_for_flush", json_boolean(next_try == QFILE_NEVER));
	if (next_try == QFILE_NEVER)
		json_object_set_new(doc, "next_try", json_null());
	else if (next_try > 0) {
		queue_cmd_time((time_t)next_try, ts, sizeof(ts));
		json_object_set_new(doc, "next_try", json_string(ts));
	} else
		json_object_set_new(doc, "next_try", json_null());
	if (warned > 0) {
		queue_cmd_time((time_t)warned, ts, sizeof(ts));
		json_object_set_new(doc, "warned", json_string(ts));
	} else
		json_object_set_new(doc, "warned", json_null());
	for (size_t i = 0; i < e->nrcpts; i++) {
		json_t *o = json_pack("{s:o, s:s}", "rcpt", queue_cmd_json_cstr(e->rcpts[i]),
		    "state", qfile_state_name(rs[i].state));

		if (rs[i].state != QFILE_PENDING) {
			queue_cmd_time((time_t)rs[i].when, ts, sizeof(ts));
			json_object_set_new(o, "code", json_integer(rs[i].code));
			json_object_set_new(o, "enhanced", json_string(rs[i].enh));
			json_object_set_new(o, "reason", queue_cmd_json_cstr(rs[i].text));
			json_object_set_new(o, "when", json_string(ts));
		}
		json_array_append_new(arr, o);
		free(rs[i].text);
	}
	json_object_set_new(doc, "delivery", arr);
	free(rs);
}

static void
queue_cmd_print_delivery(const struct envelope *e)
{
	struct qfile_rcpt *rs = xcalloc(e->nrcpts, sizeof(*rs));
	unsigned attempts;
	long long next_try, warned;
	char ts[64];

	qfile_parse_state(e, &attempts, &next_try, &warned, rs);
	printf("attempts: %u\n", attempts);
	if (next_try == QFILE_NEVER)
		printf("next-try: after queue flush (needs an admin)\n");
	else if (next_try > 0) {
		queue_cmd_time((time_t)next_try, ts, sizeof(ts));
		printf("next-try: %s\n", ts);
	}
	if (warned > 0) {
		queue_cmd_time((time_t)warned, ts, sizeof(ts));
		printf("warned: %s (delay warning sent to the sender)\n", ts);
	}
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (rs[i].state == QFILE_PENDING)
			continue;
		printf("status: ");
		queue_cmd_print_str(stdout, e->rcpts[i]);
		printf(" %s %d %s ", qfile_state_name(rs[i].state), rs[i].code,
		    rs[i].enh[0] != '\0' ? rs[i].enh : "-");
		queue_cmd_print_str(stdout, rs[i].text);
		printf("\n");
		free(rs[i].text);
	}
	free(rs);
}

static int
queue_cmd_flush(const struct conf *c, bool json)
{
	pid_t pid = spool_server_pid(c->spool);

	if (pid == 0 || kill(pid, SIGUSR1) == -1) {
		const char *why = pid == 0
		    ? "no server with delivery runs on this spool "
		      "(flush needs `smtpgate serve` with [relay] or [route])"
		    : strerror(errno);

		fprintf(stderr, "smtpgate queue: flush: %s\n", why);
		if (json)
			queue_cmd_print_json(
			    json_pack("{s:s, s:s}", "result", "error", "error", why));
		return 1;
	}
	if (json)
		queue_cmd_print_json(
		    json_pack("{s:s, s:i}", "result", "flushing", "server_pid", (int)pid));
	else
		printf(
		    "asked the server (pid %ld) to deliver every queued message now\n", (long)pid);
	return 0;
}

/* A message that cannot be opened (errno from spool_msg_find). */
static int
queue_cmd_not_found(const char *id, bool json)
{
	return queue_cmd_missing(
	    id, errno == ENOENT || errno == EINVAL ? "no such message" : strerror(errno), json);
}

static int
queue_cmd_show(int spool_fd, const char *id, bool json)
{
	const char *folder = NULL, *errstr = "cannot read";
	struct spool_read_msg m;
	struct buf h;
	char ts[64];
	json_t *doc;
	int fd, rc = 1;

	fd = spool_msg_find(spool_fd, id, &folder);
	if (fd == -1)
		return queue_cmd_not_found(id, json);
	buf_init(&h, QUEUE_CMD_HEADERS_MAX + 4096);
	if (spool_read_envelope(fd, &m, &errstr) == -1) {
		rc = queue_cmd_missing(id, errstr, json);
		goto fail;
	}
	snprintf(m.id, sizeof(m.id), "%s", id);
	if (spool_read_headers(fd, m.body_len, QUEUE_CMD_HEADERS_MAX, &h) == -1) {
		rc = queue_cmd_missing(id, strerror(errno), json);
		spool_read_clear(&m);
		goto fail;
	}
	if (json) {
		doc = queue_cmd_json_summary(&m, queue_cmd_state(folder));
		json_object_set_new(doc, "auth_user",
		    m.env->auth_user != NULL ? queue_cmd_json_cstr(m.env->auth_user) : json_null());
		json_object_set_new(doc, "client_addr", queue_cmd_json_cstr(m.env->client_addr));
		json_object_set_new(doc, "helo", queue_cmd_json_cstr(m.env->helo));
		json_object_set_new(doc, "smtputf8", json_boolean(m.env->smtputf8));
		json_object_set_new(
		    doc, "body", json_string(m.env->body_8bit ? "8bitmime" : "7bit"));
		json_object_set_new(doc, "headers", queue_cmd_json_headers(h.data, h.len));
		queue_cmd_json_delivery(doc, m.env);
		queue_cmd_print_json(doc);
	} else {
		queue_cmd_time(m.env->arrival, ts, sizeof(ts));
		printf("id: %s\nstate: %s\narrival: %s\nsize: %llu\nsender: ", id,
		    queue_cmd_state(folder), ts, (unsigned long long)m.body_len);
		queue_cmd_print_str(stdout, m.env->sender[0] != '\0' ? m.env->sender : "<>");
		for (size_t i = 0; i < m.env->nrcpts; i++) {
			printf("\nrecipient: ");
			queue_cmd_print_str(stdout, m.env->rcpts[i]);
		}
		printf("\nauth-user: ");
		queue_cmd_print_str(stdout, m.env->auth_user != NULL ? m.env->auth_user : "-");
		printf("\nclient-addr: ");
		queue_cmd_print_str(stdout, m.env->client_addr);
		printf("\nhelo: ");
		queue_cmd_print_str(stdout, m.env->helo);
		printf("\nsmtputf8: %s\nbody: %s\n", m.env->smtputf8 ? "yes" : "no",
		    m.env->body_8bit ? "8bitmime" : "7bit");
		queue_cmd_print_delivery(m.env);
		printf("\n");
		for (size_t i = 0; i < h.len; i++) {
			if (h.data[i] == '\r' && i + 1 < h.len && h.data[i + 1] == '\n')
				continue;
			if (h.data[i] == '\n')
				fputc('\n', stdout);
			else
				queue_cmd_print_safe(stdout, h.data + i, 1);
		}
	}
	spool_read_clear(&m);
	rc = 0;
fail:
	buf_free(&h);
	close(fd);
	return rc;
}

/* del, hold, release: each makes its change durable before it says so. */
static int
queue_cmd_change(const struct conf *c, int spool_fd, const char *action, const char *id, bool json)
{
	const char *folder = NULL, *to = NULL, *result;
	int fd;
	pid_t server;

	fd = spool_msg_find(spool_fd, id, &folder);
	if (fd == -1)
		return queue_cmd_not_found(id, json);
	close(fd);
	/* not in the middle of a delivery: wait for the scheduler's lock */
	fd = spool_msg_open_locked(spool_fd, folder, id, QUEUE_CMD_LOCK_WAIT * 1000);
	if (fd == -1) {
		if (errno == EBUSY)
			return queue_cmd_missing(
			    id, "a delivery of this message is still running", json);
		goto fail;
	}
	if (strcmp(action, "del") == 0) {
		result = "deleted";
		if (spool_msg_remove(spool_fd, folder, id) == -1)
			goto fail;
	} else {
		to = strcmp(action, "hold") == 0 ? SPOOL_HOLD : SPOOL_QUEUE;
		result = queue_cmd_state(to);
		if (strcmp(folder, to) != 0 && spool_msg_move(spool_fd, id, folder, to) == -1)
			goto fail;
	}
	close(fd);
	/* a released message is picked up by the running server at once */
	if (strcmp(action, "release") == 0 && (server = spool_server_pid(c->spool)) != 0)
		(void)kill(server, SIGUSR2);
	if (json)
		queue_cmd_print_json(json_pack("{s:s, s:s}", "id", id, "result", result));
	else
		printf("%s: %s\n", id, result);
	return 0;
fail:
	if (fd != -1) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	if (errno == ENOENT)
		return queue_cmd_missing(id, "no such message", json);
	return queue_cmd_missing(id, strerror(errno), json);
}

/* 0: run; 1: --help shown; -1: usage error. */
static int
queue_cmd_parse(int argc, char **argv, struct queue_cmd_opts *o)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, npos;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf_path = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	npos = argc - optind;
	if (npos < 1)
		return -1;
	o->action = argv[optind];
	if (strcmp(o->action, "list") == 0 || strcmp(o->action, "flush") == 0) {
		if (npos != 1)
			return -1;
	} else if (strcmp(o->action, "show") == 0 || strcmp(o->action, "del") == 0 ||
	    strcmp(o->action, "hold") == 0 || strcmp(o->action, "release") == 0) {
		if (npos != 2)
			return -1;
		o->id = argv[optind + 1];
	} else {
		fprintf(stderr, "smtpgate queue: unknown action \"%s\"\n", o->action);
		return -1;
	}
	if (o->conf_path == NULL) {
		fprintf(stderr, "smtpgate queue: -c FILE is required\n");
		return -1;
	}
	return 0;
}

int
queue_cmd_main(int argc, char **argv)
{
	struct queue_cmd_opts o;
	struct conf *c;
	char err[1024];
	int r, spool_fd, spool_err;

	r = queue_cmd_parse(argc, argv, &o);
	if (r != 0) {
		queue_cmd_usage(r == 1 ? stdout : stderr);
		return r == 1 ? 0 : 2;
	}
	c = conf_load(o.conf_path, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "smtpgate: %s\n", err);
		return 2;
	}
	/* no spool yet (the server never ran): an empty queue */
	spool_fd = spool_open(c->spool);
	spool_err = errno;
	if (spool_fd == -1 && spool_err != ENOENT && strcmp(o.action, "list") == 0)
		fprintf(stderr, "smtpgate queue: %s: %s\n", c->spool, strerror(spool_err));
	if (strcmp(o.action, "list") == 0)
		r = queue_cmd_list(c, spool_fd, o.json);
	else if (strcmp(o.action, "flush") == 0)
		r = queue_cmd_flush(c, o.json);
	else if (spool_fd == -1) {
		errno = spool_err;
		r = queue_cmd_not_found(o.id, o.json);
	} else if (strcmp(o.action, "show") == 0)
		r = queue_cmd_show(spool_fd, o.id, o.json);
	else
		r = queue_cmd_change(c, spool_fd, o.action, o.id, o.json);
	if (spool_fd != -1)
		close(spool_fd);
	conf_free(c);
	return r;
}
