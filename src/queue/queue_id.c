/*
 * queue_id: time-sortable unique ids (see queue_id.h for the layout).
 *
 * Invariants: the counter is one process-wide atomic, the random part is
 * drawn once per process (pthread_once), so queue_id_new() takes no lock and
 * may run on every loop thread at once.
 */
#include "queue/queue_id.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

static const char queue_id_alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

static atomic_uint_fast32_t queue_id_counter;
static uint32_t queue_id_nonce;
static pthread_once_t queue_id_once = PTHREAD_ONCE_INIT;

static void
queue_id_init_nonce(void)
{
	uint32_t r;
	struct timeval tv;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* no entropy source: still distinct per process and start */
		gettimeofday(&tv, NULL);
		r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)tv.tv_usec;
	}
	queue_id_nonce = r;
	atomic_store(&queue_id_counter, r >> 12);
}

static void
queue_id_put(char *out, uint64_t v, int nchars)
{
	for (int i = nchars - 1; i >= 0; i--) {
		out[i] = queue_id_alphabet[v & 31];
		v >>= 5;
	}
}

void
queue_id_new(char id_r[QUEUE_ID_MAX])
{
	struct timeval tv;
	uint64_t usec;
	uint32_t n;

	pthread_once(&queue_id_once, queue_id_init_nonce);
	gettimeofday(&tv, NULL);
	usec = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	n = (uint32_t)atomic_fetch_add(&queue_id_counter, 1);
	queue_id_put(id_r, usec, 11);
	queue_id_put(id_r + 11, n, 3);
	queue_id_put(id_r + 14, queue_id_nonce, 4);
	id_r[QUEUE_ID_LEN] = '\0';
}

bool
queue_id_is_valid(const char *s)
{
	size_t n = strlen(s);

	if (n != QUEUE_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0' || strchr(queue_id_alphabet, s[i]) == NULL)
			return false;
	}
	return true;
}
