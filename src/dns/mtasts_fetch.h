/*
 * mtasts_fetch: fetches a domain's MTA-STS policy file over HTTPS (RFC 8461
 * 3.3) with libcurl: https://mta-sts.DOMAIN/.well-known/mta-sts.txt, the
 * certificate verified against the system's roots, no redirects, a bounded
 * size and time. Blocking: for the `dns` command.
 */
#ifndef SG_DNS_MTASTS_FETCH_H
#define SG_DNS_MTASTS_FETCH_H

#include <stddef.h>

/* Fetches the policy of domain. addrs (may be NULL) are the addresses of
 * mta-sts.DOMAIN as our resolver found them; curl then connects to those
 * instead of asking the system resolver. On success *body_r is malloc'd
 * (NUL-terminated, *len_r bytes); on failure err says why. */
int mtasts_fetch(const char *domain, char *const *addrs, size_t naddrs, double timeout,
    char **body_r, size_t *len_r, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The same with a CA file to trust instead of the system's roots (NULL: the
 * system's) and a port other than 443 (0: 443): for delivery's MTA-STS in
 * tests and labs (route_mx). */
int mtasts_fetch_ex(const char *domain, char *const *addrs, size_t naddrs, double timeout,
    const char *cafile, unsigned port, char **body_r, size_t *len_r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
