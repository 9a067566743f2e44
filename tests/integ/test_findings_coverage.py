"""Every finding id that doc/findings.md lists is produced by some test
against a real server, zone or configuration.

conftest.py reads the output of every `smtpgate probe|dns|audit|serve
--check` the tests run and keeps the ids reported; the check below runs
last and, when the whole directory ran, fails on an id no test reached. A
partial run (one file, -k, a deselection) skips it: the ids of the tests
that did not run would be missing for no fault of the code.
"""
import re

import pytest

import conftest
from conftest import ROOT

_DOC = ROOT / "doc" / "findings.md"
_ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"


def doc_ids():
    """The ids of doc/findings.md: the first column of its id tables and the
    id column of the probe's reply table."""
    ids = set()
    header = None
    for line in _DOC.read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        m = re.fullmatch(f"`({_ID})`", cells[0])
        if m and header[0] == "id":
            ids.add(m.group(1))
        if header == ["reply", "command", "id"]:
            ids.update(re.findall(f"`({_ID})`", cells[2]))
    return ids


def kb_ids():
    """The ids of the knowledge base (src/explain/kb_*.c)."""
    ids = set()
    for f in (ROOT / "src" / "explain").glob("kb_*.c"):
        ids.update(re.findall(r'^\s*\{\s*"(' + _ID + ')",', f.read_text(), re.M))
    return ids


def test_doc_lists_the_knowledge_base():
    doc, kb = doc_ids(), kb_ids()
    assert len(kb) > 100, kb
    assert kb - doc == set(), "ids of src/explain/ that doc/findings.md does not list"
    assert doc - kb == set(), "ids of doc/findings.md that src/explain/ does not know"


# Ids no test produces yet: each needs a real server, zone or configuration
# built for it (issue "first hour", item 12, left open). The list may only
# shrink: an id here that a test reaches fails below until it is removed,
# and an id missing from every test and from this list fails as before.
NOT_YET_REACHED = {
    # probe
    "auth-server-proof-invalid", "cert-expires-soon", "command-not-implemented",
    "connection-reset", "connection-timeout", "message-rejected", "parameter-not-implemented",
    "recipient-rejected", "reply-timeout", "server-temporary-failure", "tls-unavailable",
    # dns
    "dmarc-pct", "dmarc-rua-unauthorized", "dmarc-unknown-tag", "mta-sts-invalid",
    "mta-sts-max-age-short", "mta-sts-mx-mismatch", "mta-sts-policy-invalid", "mta-sts-testing",
    "mx-no-ptr", "spf-include-loop", "tls-rpt-invalid", "tlsa-invalid",
}


def test_every_finding_id_is_reached(request):
    why = conftest.findings_whole_run(request.node.nodeid)
    if why is not None:
        pytest.skip(f"a partial run ({why}): the coverage of finding ids is not judged")
    missing = doc_ids() - conftest.FINDINGS_SEEN - NOT_YET_REACHED
    assert not missing, ("finding ids of doc/findings.md that no test produced: "
                         + ", ".join(sorted(missing)))
    reached = NOT_YET_REACHED & conftest.FINDINGS_SEEN
    assert not reached, ("now reached by a test: remove from NOT_YET_REACHED: "
                         + ", ".join(sorted(reached)))
    assert NOT_YET_REACHED <= doc_ids(), NOT_YET_REACHED - doc_ids()
