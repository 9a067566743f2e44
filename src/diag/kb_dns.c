/*
 * kb_dns: the knowledge base of `smtpgate dns` findings (see finding.h and
 * doc/findings.md). Ids are stable: scripts match on them.
 */
#include "diag/finding.h"

const struct finding_kb finding_kb_dns[] = {
    {NULL, FINDING_INFO, NULL, NULL},
};
