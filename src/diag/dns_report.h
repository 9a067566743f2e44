/*
 * dns_report: prints the readable report of `smtpgate dns` (a
 * dns_check_run object; the findings are printed after it by the caller).
 */
#ifndef SG_DIAG_DNS_REPORT_H
#define SG_DIAG_DNS_REPORT_H

#include <stdio.h>

#include <jansson.h>

void dns_report_print(FILE *out, const json_t *report);

#endif
