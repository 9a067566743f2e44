/*
 * server: configuration snapshots and their reference counts.
 */
#include "server/server.h"

#include <stdlib.h>

#include "conf/conf.h"
#include "net/tls.h"

struct server_snap *
server_snap_get(struct server *srv)
{
	struct server_snap *snap;

	pthread_mutex_lock(&srv->lock);
	snap = srv->snap;
	__atomic_add_fetch(&snap->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&srv->lock);
	return snap;
}

void
server_snap_put(struct server_snap *snap)
{
	if (snap == NULL || __atomic_sub_fetch(&snap->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	tls_server_unref(snap->tls);
	conf_free(snap->conf);
	free(snap);
}
