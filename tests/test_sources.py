"""Sources per host: which token a URL gets, the advice for a refusal, and the allowed hosts.

Runs without Django: `pytest tests/test_sources.py -p no:django`.
"""

import pytest

from downloads.sources import CIVITAI, Source, Sources, host_matches

TOKEN = "hf_s3cr3t_t0k3n"
CONFIGURED = Sources.configured({"HF_TOKEN": TOKEN, "CIVITAI_TOKEN": "civ"})


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("huggingface.co", TOKEN),
        ("cdn-lfs.huggingface.co", TOKEN),
        ("HuggingFace.co", TOKEN),
        ("evilhuggingface.co", None),
        ("evil-huggingface.co", None),
        ("huggingface.co.evil.example", None),
        ("civitai.com", "civ"),
        ("example.org", None),
    ],
)
def test_a_token_goes_to_its_own_hosts_only(host, expected):
    assert CONFIGURED.token_for(f"https://{host}/x") == expected


def test_tokens_are_never_sent_over_plain_http_to_a_remote_host():
    assert CONFIGURED.token_for("http://huggingface.co/x") is None
    local = Sources((Source("local", ("127.0.0.1", "localhost"), "HF_TOKEN", TOKEN),))
    assert local.token_for("http://127.0.0.1:8000/x") == TOKEN
    assert local.token_for("http://localhost/x") == TOKEN


def test_a_token_set_blank_or_padded_is_none_or_trimmed_and_never_shown():
    padded = Sources.configured({"HF_TOKEN": f" {TOKEN}\n", "CIVITAI_TOKEN": "  "})
    assert padded.token_for("https://huggingface.co/x") == TOKEN
    assert padded.token_for("https://civitai.com/x") is None
    assert set(padded.secrets()) == {f" {TOKEN}\n", TOKEN}
    assert TOKEN not in repr(padded)


def test_a_refused_download_is_told_which_variable_to_set():
    assert CONFIGURED.auth_hint("https://cdn-lfs.huggingface.co/x") == "set HF_TOKEN"
    assert CONFIGURED.auth_hint("https://civitai.com/api/download/models/1") == "set CIVITAI_TOKEN"
    assert CONFIGURED.auth_hint("https://example.org/x") == ""
    assert Sources.configured({}).auth_hint("https://huggingface.co/x") == "set HF_TOKEN"
    assert CONFIGURED.source_for("https://civitai.com/x").name == CIVITAI.name


def test_allowed_hosts_take_their_subdomains_and_empty_allows_any():
    allowing = Sources(allowed_hosts=("huggingface.co", "LOCALHOST"))
    assert allowing.allows("https://cdn-lfs.huggingface.co/x")
    assert allowing.allows("http://localhost:8000/x")
    assert not allowing.allows("https://evilhuggingface.co/x")
    assert not allowing.allows("http://[::1]/x")
    assert Sources().allows("https://anywhere.example/x")


@pytest.mark.parametrize(
    ("host", "domains", "expected"),
    [
        ("a.b.example", ["example"], True),
        ("example", ["EXAMPLE."], True),
        ("xexample", ["example"], False),
        ("example", ["", " "], False),
    ],
)
def test_host_matching(host, domains, expected):
    assert host_matches(host, domains) is expected
