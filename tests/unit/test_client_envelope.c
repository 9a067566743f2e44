/*
 * Unit tests for client_envelope (client/client.c) against a scripted peer
 * on a loopback TCP socket: with PIPELINING the MAIL and RCPT commands
 * arrive in one write (groups of CLIENT_PIPELINE_MAX), a refused MAIL still
 * has its RCPT replies read so the session stays in step, and without
 * PIPELINING the client waits for each reply before the next command.
 *
 * The peer runs in a thread; each step of its script reads until it has a
 * given number of command lines, records what each read(2) returned, then
 * writes its replies in one write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"

#define PEER_STEPS_MAX 8
#define PEER_BUF 65536

struct peer_step {
	size_t lines; /* command lines to read before answering */
	const char *reply; /* written in one go; NULL: a generated one (see gen) */
};

struct peer {
	int lfd;
	struct sockaddr_in sa;
	pthread_t thread;
	const struct peer_step *steps;
	size_t nsteps;
	/* generated replies: "250 ok" per line, except lines whose number
	 * (0-based) in the first envelope step is refuse_at: "550 no" */
	int refuse_at;
	bool close_after; /* close after the last step (a 421), no QUIT */
	/* what arrived: per step, the first read and the whole text */
	char first_read[PEER_STEPS_MAX][PEER_BUF];
	char all[PEER_STEPS_MAX][PEER_BUF];
	size_t reads[PEER_STEPS_MAX];
};

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; (s = strstr(s, "\r\n")) != NULL; s += 2)
		n++;
	return n;
}

static void
write_str(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = write(fd, s + off, n - off);

		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void *
peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);

	if (fd == -1)
		return NULL;
	write_str(fd, "220 peer.test ESMTP\r\n");
	for (size_t i = 0; i < p->nsteps; i++) {
		size_t len = 0;

		while (count_lines(p->all[i]) < p->steps[i].lines) {
			ssize_t r = read(fd, p->all[i] + len, PEER_BUF - 1 - len);

			if (r <= 0)
				goto out;
			if (p->reads[i]++ == 0)
				memcpy(p->first_read[i], p->all[i], (size_t)r);
			len += (size_t)r;
			p->all[i][len] = '\0';
		}
		if (p->steps[i].reply != NULL) {
			write_str(fd, p->steps[i].reply);
		} else {
			static char gen[PEER_BUF];
			size_t g = 0;

			for (size_t k = 0; k < p->steps[i].lines; k++)
				g += (size_t)snprintf(gen + g, sizeof(gen) - g, "%s\r\n",
				    i == 1 && (int)k == p->refuse_at ? "550 5.1.1 no" : "250 ok");
			write_str(fd, gen);
		}
	}
	/* QUIT, if it comes */
	if (!p->close_after) {
		char b[256];

		if (read(fd, b, sizeof(b)) > 0)
			write_str(fd, "221 bye\r\n");
	}
out:
	close(fd);
	return NULL;
}

static void
peer_start(struct peer *p, const struct peer_step *steps, size_t nsteps)
{
	socklen_t sl = sizeof(p->sa);

	assert_true(nsteps <= PEER_STEPS_MAX);
	p->steps = steps;
	p->nsteps = nsteps;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	memset(&p->sa, 0, sizeof(p->sa));
	p->sa.sin_family = AF_INET;
	p->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&p->sa, sizeof(p->sa)), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&p->sa, &sl), 0);
	assert_int_equal(listen(p->lfd, 1), 0);
	assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static struct client *
peer_client(struct peer *p)
{
	struct client_conf cc = {.host = "127.0.0.1", .helo = "test.example", .timeout_ms = 5000};
	struct client *c = client_new(&cc);

	assert_int_equal(client_connect_addr(c, (struct sockaddr *)&p->sa, sizeof(p->sa)), 0);
	assert_int_equal(client_greeting(c), 0);
	assert_int_equal(client_ehlo(c), 0);
	return c;
}

static void
peer_finish(struct peer *p, struct client *c)
{
	client_quit(c);
	client_free(c);
	pthread_join(p->thread, NULL);
	close(p->lfd);
}

#define EHLO_PIPE "250-peer.test\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n"
#define EHLO_PLAIN "250-peer.test\r\n250 SIZE 1000000\r\n"

static void
test_pipelined_in_one_write(void **state)
{
	static const struct peer_step steps[] = {
	    {1, EHLO_PIPE},
	    {4, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n"},
	};
	struct peer *p = calloc(1, sizeof(*p));
	const char *to[] = {"b@x.test", "c@x.test", "d@x.test"};
	struct client_reply rr[3];
	struct client *c;

	(void)state;
	peer_start(p, steps, 2);
	c = peer_client(p);
	assert_true(client_caps(c)->pipelining);
	assert_int_equal(client_envelope(c, "a@x.test", 10, 0, to, 3, rr), 0);
	/* all four commands in the peer's first read: one write */
	assert_string_equal(p->first_read[1],
	    "MAIL FROM:<a@x.test> SIZE=10\r\n"
	    "RCPT TO:<b@x.test>\r\n"
	    "RCPT TO:<c@x.test>\r\n"
	    "RCPT TO:<d@x.test>\r\n");
	assert_int_equal(rr[0].code, 250);
	assert_int_equal(rr[1].code, 550);
	assert_string_equal(rr[1].enh, "5.1.1");
	assert_string_equal(rr[1].cmd, "RCPT");
	assert_int_equal(rr[2].code, 250);
	peer_finish(p, c);
	free(p);
}

static void
test_refused_mail_stays_in_step(void **state)
{
	static const struct peer_step steps[] = {
	    {1, EHLO_PIPE},
	    {3, "451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"},
	    {1, "250 2.0.0 reset\r\n"},
	};
	struct peer *p = calloc(1, sizeof(*p));
	const char *to[] = {"b@x.test", "c@x.test"};
	struct client_reply rr[2];
	struct client *c;

	(void)state;
	peer_start(p, steps, 3);
	c = peer_client(p);
	assert_int_equal(client_envelope(c, "a@x.test", 0, 0, to, 2, rr), -1);
	assert_int_equal(client_error(c)->kind, CLIENT_E_REPLY);
	/* the reply the caller sees is MAIL's, not the last 503 */
	assert_int_equal(client_reply(c)->code, 451);
	assert_string_equal(client_reply(c)->cmd, "MAIL");
	assert_int_equal(rr[0].code, 503);
	assert_int_equal(rr[1].code, 503);
	/* the RCPT replies were consumed: RSET gets its own reply */
	assert_int_equal(client_rset(c), 0);
	assert_int_equal(client_reply(c)->code, 250);
	assert_string_equal(client_reply(c)->line, "250 2.0.0 reset");
	peer_finish(p, c);
	free(p);
}

/* RFC 5321 3.8: a server that answers 421 closes the connection, so the
 * replies to the pipelined RCPTs never come. The outcome is still MAIL's
 * refusal (delivery retries a 421 on a reused session at once on a new
 * one), not "connection closed" at RCPT. */
static void
test_mail_421_then_close(void **state)
{
	static const struct peer_step steps[] = {
	    {1, EHLO_PIPE},
	    {3, "421 4.4.2 peer.test idle for too long, closing\r\n"},
	};
	struct peer *p = calloc(1, sizeof(*p));
	const char *to[] = {"b@x.test", "c@x.test"};
	struct client_reply rr[2];
	struct client *c;

	(void)state;
	p->close_after = true;
	peer_start(p, steps, 2);
	c = peer_client(p);
	assert_int_equal(client_envelope(c, "a@x.test", 0, 0, to, 2, rr), -1);
	assert_int_equal(client_error(c)->kind, CLIENT_E_REPLY);
	assert_int_equal(client_reply(c)->code, 421);
	assert_string_equal(client_reply(c)->cmd, "MAIL");
	assert_string_equal(client_reply(c)->enh, "4.4.2");
	assert_true(client_error_is_transient(c));
	assert_int_equal(rr[0].code, 0);
	assert_int_equal(rr[1].code, 0);
	peer_finish(p, c);
	free(p);
}

static void
test_not_offered_one_at_a_time(void **state)
{
	static const struct peer_step steps[] = {
	    {1, EHLO_PLAIN},
	    {1, "250 ok\r\n"},
	    {1, "250 ok\r\n"},
	    {1, "250 ok\r\n"},
	};
	struct peer *p = calloc(1, sizeof(*p));
	const char *to[] = {"b@x.test", "c@x.test"};
	struct client_reply rr[2];
	struct client *c;

	(void)state;
	peer_start(p, steps, 4);
	c = peer_client(p);
	assert_false(client_caps(c)->pipelining);
	assert_int_equal(client_envelope(c, "a@x.test", 0, 0, to, 2, rr), 0);
	/* each command came alone: the client waited for every reply */
	assert_string_equal(p->all[1], "MAIL FROM:<a@x.test>\r\n");
	assert_string_equal(p->all[2], "RCPT TO:<b@x.test>\r\n");
	assert_string_equal(p->all[3], "RCPT TO:<c@x.test>\r\n");
	assert_int_equal(rr[0].code, 250);
	assert_int_equal(rr[1].code, 250);
	peer_finish(p, c);
	free(p);
}

static void
test_not_offered_refused_mail_sends_no_rcpt(void **state)
{
	static const struct peer_step steps[] = {
	    {1, EHLO_PLAIN},
	    {1, "550 5.7.1 sender refused\r\n"},
	    {1, "250 ok\r\n"},
	};
	struct peer *p = calloc(1, sizeof(*p));
	const char *to[] = {"b@x.test"};
	struct client_reply rr[1];
	struct client *c;

	(void)state;
	peer_start(p, steps, 3);
	c = peer_client(p);
	assert_int_equal(client_envelope(c, "a@x.test", 0, 0, to, 1, rr), -1);
	assert_int_equal(client_reply(c)->code, 550);
	assert_int_equal(rr[0].code, 0); /* never sent */
	assert_int_equal(client_rset(c), 0);
	assert_string_equal(p->all[2], "RSET\r\n");
	peer_finish(p, c);
	free(p);
}

static void
test_groups_of_pipeline_max(void **state)
{
	enum { N = CLIENT_PIPELINE_MAX + 6 };
	static const struct peer_step steps[] = {
	    {1, EHLO_PIPE},
	    {CLIENT_PIPELINE_MAX, NULL},
	    {N + 1 - CLIENT_PIPELINE_MAX, NULL},
	};
	struct peer *p = calloc(1, sizeof(*p));
	char addrs[N][32];
	const char *to[N];
	struct client_reply rr[N];
	struct client *c;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "r%zu@x.test", i);
		to[i] = addrs[i];
	}
	p->refuse_at = 3; /* in the first group: recipient 2 */
	peer_start(p, steps, 3);
	c = peer_client(p);
	assert_int_equal(client_envelope(c, "a@x.test", 0, 0, to, N, rr), 0);
	assert_int_equal(count_lines(p->first_read[1]), CLIENT_PIPELINE_MAX);
	assert_int_equal(count_lines(p->first_read[2]), N + 1 - CLIENT_PIPELINE_MAX);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(rr[i].code, i == 2 ? 550 : 250);
	peer_finish(p, c);
	free(p);
}

static void
test_bad_recipient_sends_nothing(void **state)
{
	static const struct peer_step steps[] = {
	    {1, EHLO_PIPE},
	    {1, "250 2.0.0 reset\r\n"},
	};
	struct peer *p = calloc(1, sizeof(*p));
	const char *to[] = {"b@x.test", "evil>\r\nDATA"};
	struct client_reply rr[2];
	struct client *c;

	(void)state;
	peer_start(p, steps, 2);
	c = peer_client(p);
	assert_int_equal(client_envelope(c, "a@x.test", 0, 0, to, 2, rr), -1);
	assert_int_equal(client_error(c)->kind, CLIENT_E_LOCAL);
	/* nothing of the envelope went out: the next command is RSET */
	assert_int_equal(client_rset(c), 0);
	assert_string_equal(p->all[1], "RSET\r\n");
	peer_finish(p, c);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipelined_in_one_write),
	    cmocka_unit_test(test_refused_mail_stays_in_step),
	    cmocka_unit_test(test_mail_421_then_close),
	    cmocka_unit_test(test_not_offered_one_at_a_time),
	    cmocka_unit_test(test_not_offered_refused_mail_sends_no_rcpt),
	    cmocka_unit_test(test_groups_of_pipeline_max),
	    cmocka_unit_test(test_bad_recipient_sends_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
