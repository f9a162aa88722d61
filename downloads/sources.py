"""Where model files come from: for a URL, which bearer token goes with it, what to advise when
its host refuses access (HTTP 401/403), and whether the host may be contacted at all.

Plain Python, no Django: the engine asks it on every hop of a download, and the worker builds
it from the settings (`Sources.configured`). A host matches a configured name when it is that
name or a subdomain of it (`host_matches`, the only place that rule is written).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

# Hosts a token may reach over plain http: local mirrors and tests, where nobody is on the path.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Source:
    """A family of hosts that serve model files alike: one token for all of them, one advice.

    domains: the hosts, each with its subdomains. token_setting: the environment variable
    that holds the token, named in the advice to a refused download. token: its value.
    """

    name: str
    domains: tuple[str, ...]
    token_setting: str = ""
    token: str = field(default="", repr=False)

    def serves(self, host: str) -> bool:
        return host_matches(host, self.domains)

    @property
    def auth_hint(self) -> str:
        return f"set {self.token_setting}" if self.token_setting else ""


HUGGING_FACE = Source("Hugging Face", ("huggingface.co",), "HF_TOKEN")
CIVITAI = Source("Civitai", ("civitai.com",), "CIVITAI_TOKEN")
KNOWN_SOURCES = (HUGGING_FACE, CIVITAI)


@dataclass(frozen=True)
class Sources:
    """The sources one deployment knows, with their tokens, and the hosts downloads may reach
    (`allowed_hosts`, each with its subdomains; empty: any host)."""

    sources: tuple[Source, ...] = ()
    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def configured(cls, tokens: Mapping[str, str], allowed_hosts: Iterable[str] = ()) -> Sources:
        """The known sources, with their tokens taken from `tokens` by setting name
        ({"HF_TOKEN": "hf_..."}; a source with none sends no token)."""
        return cls(
            tuple(replace(source, token=tokens.get(source.token_setting, "")) for source in KNOWN_SOURCES),
            tuple(allowed_hosts),
        )

    def source_for(self, url: str) -> Source | None:
        host = host_of(url)
        return next((source for source in self.sources if source.serves(host)), None)

    def token_for(self, url: str) -> str | None:
        """The token for this URL's host; never over plain http, where anyone on the path reads
        it (loopback excepted)."""
        source = self.source_for(url)
        if source is None or not source.token.strip():
            return None
        if urlsplit(url).scheme.lower() != "https" and host_of(url) not in LOOPBACK_HOSTS:
            return None
        return source.token.strip()

    def auth_hint(self, url: str) -> str:
        """Advice for a download this URL's host refused (401/403), e.g. "set HF_TOKEN"."""
        source = self.source_for(url)
        return source.auth_hint if source else ""

    def allows(self, url: str) -> bool:
        return not self.allowed_hosts or host_matches(host_of(url), self.allowed_hosts)

    def secrets(self) -> list[str]:
        """Every configured token, as set and trimmed: what an error message must never show."""
        return [
            variant
            for source in self.sources
            if source.token.strip()
            for variant in {source.token, source.token.strip()}
        ]


def host_matches(host: str, domains: Iterable[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (case and a final dot ignored)."""
    host = host.lower()
    for domain in domains:
        domain = domain.strip().lower().rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
