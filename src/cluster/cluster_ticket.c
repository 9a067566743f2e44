/*
 * cluster_ticket: the TLS session ticket keys of the cluster
 * (net/tls_ticket.h), in Redis as PREFIX ticket:EPOCH (hex of name, AES
 * key, HMAC key), EPOCH the wall-clock time / CLUSTER_TICKET_PERIOD_S.
 * The first node to reach a new period makes its key (SET NX with an
 * expiry of CLUSTER_TICKET_KEEP periods); every node reads that one (it
 * encrypts) and the two before (they still decrypt). Nodes agree on the
 * period within their clock skew; a ticket from a node a period ahead is
 * still found by name. Redis down: the ring keeps what it has.
 *
 * The keys are secrets: every copy here is wiped after use; never logged.
 */
#include "cluster/cluster_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cluster/cluster_lua.h"
#include "lib/log.h"
#include "net/tls_ticket.h"

static int
cluster_ticket_unhex(const char *hex, size_t len, unsigned char *out, size_t outlen)
{
	if (len != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char c = hex[2 * i + (size_t)k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

int
cluster_ticket_parse(const char *hex, size_t len, struct tls_ticket_key *k)
{
	unsigned char raw[TLS_TICKET_KEY_LEN];
	int rc = cluster_ticket_unhex(hex, len, raw, sizeof(raw)) == -1
	    ? -1
	    : tls_ticket_key_from(raw, sizeof(raw), k);

	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

static void
cluster_ticket_got(struct cluster *cl, redisReply *r, void *arg)
{
	struct tls_ticket_key keys[TLS_TICKET_KEYS];
	size_t n = 0;

	(void)arg;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < r->elements && n < TLS_TICKET_KEYS; i++) {
		redisReply *e = r->element[i];

		if (e->type == REDIS_REPLY_STRING &&
		    cluster_ticket_parse(e->str, e->len, &keys[n]) == 0)
			n++;
		else if (i == 0)
			break; /* no current key: keep the ring as it is */
	}
	if (n > 0 && memcmp(cl->ticket_name, keys[0].name, sizeof(cl->ticket_name)) != 0) {
		memcpy(cl->ticket_name, keys[0].name, sizeof(cl->ticket_name));
		tls_ticket_set(keys, n);
		log_event(LOG_INFO, "cluster", 0, "{s:s, s:i}", "tls_ticket_keys", "shared", "keys",
		    (int)n);
	} else if (n > 0) {
		tls_ticket_set(keys, n);
	}
	OPENSSL_cleanse(keys, sizeof(keys));
}

void
cluster_ticket_refresh(struct cluster *cl)
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char raw[TLS_TICKET_KEY_LEN];
	char cand[2 * TLS_TICKET_KEY_LEN + 1], ttl[16];
	char k0[CLUSTER_MSG_KEY_MAX], k1[CLUSTER_MSG_KEY_MAX], k2[CLUSTER_MSG_KEY_MAX];
	char e[3][24];
	const char *argv[] = {"EVAL", cluster_lua_ticket, "3", k0, k1, k2, cand, ttl};
	long long epoch = (long long)time(NULL) / CLUSTER_TICKET_PERIOD_S;

	cl->next_ticket_ms = cluster_mono_ms() + CLUSTER_TICKET_REFRESH_MS;
	for (int i = 0; i < 3; i++)
		snprintf(e[i], sizeof(e[i]), "%lld", epoch - i);
	if (cluster_msg_key(k0, sizeof(k0), cl->prefix, "ticket:", e[0]) == -1 ||
	    cluster_msg_key(k1, sizeof(k1), cl->prefix, "ticket:", e[1]) == -1 ||
	    cluster_msg_key(k2, sizeof(k2), cl->prefix, "ticket:", e[2]) == -1 ||
	    RAND_bytes(raw, sizeof(raw)) != 1)
		return;
	for (size_t i = 0; i < sizeof(raw); i++) {
		cand[2 * i] = hexd[raw[i] >> 4];
		cand[2 * i + 1] = hexd[raw[i] & 15];
	}
	cand[2 * sizeof(raw)] = '\0';
	snprintf(ttl, sizeof(ttl), "%d", CLUSTER_TICKET_PERIOD_S * CLUSTER_TICKET_KEEP);
	(void)cluster_send(
	    cl, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL, cluster_ticket_got, NULL);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(cand, sizeof(cand));
}
