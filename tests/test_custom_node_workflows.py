"""The scanner over real workflows that use custom nodes (tests/fixtures/custom_nodes, with their
sources in SOURCES.md): every model file each one references is found, in the right folder and
with the right state. Recall (found / expected) is printed with the test output.

No database: a ref whose folder the workflow leaves open counts as found in the folder the
scanner guesses, the last step of the folder resolution (docs/scanner.md).
"""

import json
from pathlib import Path

from templates_scan.scanner import normalize_model_path, scan_file

CORPUS = Path(__file__).parent / "fixtures" / "custom_nodes"
EXPECTED = CORPUS / "expected.json"


def found_refs(result):
    """(folder or None, path, active) of each ref: a managed or folder-unknown ref without a
    guess has folder None."""
    return {(m.directory or m.guess or None, m.path, not m.inactive) for m in result.models}


def expected_refs():
    """File -> its expected (folder or None, path, active); tests/test_loader_table.py checks that
    it lists every workflow of the corpus once."""
    return {
        name: {(folder, normalize_model_path(path), active) for folder, path, active in refs}
        for name, refs in json.loads(EXPECTED.read_text()).items()
    }


def test_every_model_reference_of_the_corpus_is_found(capsys):
    corpus = expected_refs()
    expected = found = 0
    lost = {}
    for name, refs in sorted(corpus.items()):
        got = found_refs(scan_file(CORPUS / name))
        expected += len(refs)
        found += len(refs & got)
        if refs - got:
            lost[name] = sorted(refs - got, key=str)
    with capsys.disabled():
        print(f"\ncustom-node corpus: {len(corpus)} workflows, recall {found}/{expected} ({found / expected:.1%})")
    assert not lost, lost
