/*
 * notify: see notify.h.
 */
#include "server/notify.h"

#include <time.h>

#ifdef SG_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

bool
notify_built(void)
{
#ifdef SG_HAVE_SYSTEMD
	return true;
#else
	return false;
#endif
}

void
notify_ready(const char *status)
{
#ifdef SG_HAVE_SYSTEMD
	/* 0: $NOTIFY_SOCKET stays, for the notifications that follow */
	(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
#else
	(void)status;
#endif
}

void
notify_reloading(void)
{
#ifdef SG_HAVE_SYSTEMD
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
#endif
}

void
notify_stopping(void)
{
#ifdef SG_HAVE_SYSTEMD
	(void)sd_notify(0, "STOPPING=1");
#endif
}
