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


def test_every_finding_id_is_reached(request):
    why = conftest.findings_whole_run(request.node.nodeid)
    if why is not None:
        pytest.skip(f"a partial run ({why}): the coverage of finding ids is not judged")
    missing = doc_ids() - conftest.FINDINGS_SEEN
    assert not missing, ("finding ids of doc/findings.md that no test produced: "
                         + ", ".join(sorted(missing)))
