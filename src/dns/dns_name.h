/*
 * dns_name: what a domain name must look like before it is asked for or
 * trusted (RFC 1035 2.3.4 lengths, LDH labels with '_' for service names).
 * Pure: no resolver, no I/O.
 */
#ifndef SG_DNS_DNS_NAME_H
#define SG_DNS_DNS_NAME_H

#include <stdbool.h>

/* True for a name of at least two labels, each 1..63 letters, digits, '-'
 * (not first or last) or '_', 253 octets at most, no trailing dot. */
bool dns_name_is_valid(const char *s);

#endif
