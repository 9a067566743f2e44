/*
 * conn: a server-side connection over libevent bufferevents (conn.h).
 *
 * Plain, the bufferevent does not own the socket, so that STARTTLS can
 * free it (and whatever input it holds) and hand the socket to a TLS
 * bufferevent, which owns both the socket and the SSL from then on
 * (BEV_OPT_CLOSE_ON_FREE). Not the filter type: it mishandles bytes
 * pipelined behind the handshake (DESIGN 4).
 */
#include "net/conn.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "lib/xalloc.h"
#include "net/loop.h"

#define CONN_IOV_MAX 16

struct conn {
	struct loop *loop;
	int fd; /* -1 once a TLS bufferevent owns it */
	struct bufferevent *bev;
	SSL *ssl; /* owned by bev once TLS starts */
	const struct conn_ops *ops;
	void *arg;
	int timeout_s;
	bool broken; /* an error or a write timeout: no close_notify */
	unsigned long tls_err;
	char err[256];
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void
conn_arm(struct conn *c)
{
	struct timeval tv = {c->timeout_s, 0};

	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	if (c->timeout_s > 0)
		bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct conn *
conn_new(struct loop *l, int fd, const struct conn_ops *ops, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->loop = l;
	c->fd = fd;
	c->ops = ops;
	c->arg = arg;
	/* does not own fd: STARTTLS hands it on */
	c->bev = bufferevent_socket_new(loop_base(l), fd, 0);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return NULL;
	}
	conn_arm(c);
	return c;
}

int
conn_start_tls(struct conn *c, SSL *ssl)
{
	int fd = c->fd;

	if (c->ssl != NULL || fd == -1) {
		SSL_free(ssl);
		return -1;
	}
	/* the plain bufferevent goes, with anything pipelined in its input */
	bufferevent_free(c->bev);
	c->bev = bufferevent_openssl_socket_new(
	    loop_base(c->loop), fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->fd = -1;
	c->ssl = ssl;
	/* clients that close without close_notify are common; EOF is EOF */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	conn_arm(c);
	return 0;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL && !c->broken && SSL_is_init_finished(c->ssl))
		(void)SSL_shutdown(c->ssl);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* a TLS one closes fd and frees ssl */
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

void
conn_set_timeout(struct conn *c, int seconds)
{
	struct timeval tv = {seconds, 0};

	c->timeout_s = seconds;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

void
conn_read_pause(struct conn *c)
{
	bufferevent_disable(c->bev, EV_READ);
}

void
conn_read_resume(struct conn *c)
{
	bufferevent_enable(c->bev, EV_READ);
}

void
conn_stop(struct conn *c)
{
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}

size_t
conn_in_len(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

const char *
conn_in_pullup(struct conn *c, size_t n)
{
	return (const char *)evbuffer_pullup(bufferevent_get_input(c->bev), (ev_ssize_t)n);
}

size_t
conn_in_peek(struct conn *c, struct iovec *iov, size_t niov)
{
	struct evbuffer_iovec v[CONN_IOV_MAX];
	int n;

	if (niov > CONN_IOV_MAX)
		niov = CONN_IOV_MAX;
	n = evbuffer_peek(bufferevent_get_input(c->bev), -1, NULL, v, (int)niov);
	if (n < 0)
		return 0;
	if ((size_t)n > niov)
		n = (int)niov; /* evbuffer_peek counts the pieces it did not fill too */
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	return (size_t)n;
}

void
conn_in_drain(struct conn *c, size_t n)
{
	evbuffer_drain(bufferevent_get_input(c->bev), n);
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	if (n > 0)
		bufferevent_write(c->bev, p, n);
}

size_t
conn_out_len(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

SSL *
conn_ssl(const struct conn *c)
{
	return c->ssl;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

const char *
conn_error_text(struct conn *c)
{
	return c->err[0] != '\0' ? c->err : "connection error";
}

bool
conn_error_is_tls(const struct conn *c)
{
	return c->tls_err != 0;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	c->ops->read_cb(c->arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	/* libevent may call this after a partial write (bufferevent_openssl
	 * does): only an empty output is "drained" */
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	c->ops->drained_cb(c->arg);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		c->ops->event_cb(c->arg, CONN_TLS_READY);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (what & BEV_EVENT_WRITING) {
			c->broken = true;
			c->ops->event_cb(c->arg, CONN_WRITE_TIMEOUT);
		} else {
			c->ops->event_cb(c->arg, CONN_READ_TIMEOUT);
		}
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		c->broken = true;
		c->tls_err = c->ssl != NULL ? bufferevent_get_openssl_error(bev) : 0;
		if (c->tls_err != 0)
			ERR_error_string_n(c->tls_err, c->err, sizeof(c->err));
		c->ops->event_cb(c->arg, CONN_ERROR);
		return;
	}
	c->ops->event_cb(c->arg, CONN_EOF);
}
