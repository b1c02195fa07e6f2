"""Find secrets pasted into flow configuration, without ever repeating them.

Three detectors run on every string scalar of a node's config, strongest first; a value gets at
most one finding:

* ``SECR101`` a known token shape anywhere in the value (Slack, SendGrid, Stripe live keys,
  GitHub tokens, AWS access key ids, Google API keys, NATS seeds, JWTs, PEM private keys, and a
  Twilio Account SID whose sibling value is a 32-hex auth token). The message names the shape.
* ``SECR103`` a URL with a password in its user-info (``https://user:pw@host``).
* ``SECR100`` a literal under a secret-named key (``password``, ``client_secret``,
  ``authToken``, ``api_key``, ``private_key``...): keys are split into words (snake, kebab,
  camel case) and a key whose last word says it holds a *name, path, URL, id or reference*
  (``secret_name``, ``token_url``, ``password_file``) is not secret-named. References are not
  literals: ``${VAR}``, ``$VAR``, ``{{ ... }}``, ``<...>``, ``env:``/``vault:``/``secret:``/
  ``ref:``/``aws-sm:``/``k8s:`` prefixes, and ``@name``.
* ``SECR102`` (warning) a high-entropy string: 24+ characters, no spaces, letters and digits
  mixed, Shannon entropy >= 4 bits/char. URLs, paths, UUIDs, pure hex (hashes of config,
  commit ids), dotted or dashed identifiers, e-mail addresses and values under a key naming an
  id, name, path or URL (``spreadsheet_id``) are not considered: those are the ordinary config
  values a validator must stay quiet on.

Findings carry the key path (``tasks[3].http_request.headers.Authorization``) and the shape's
name, never the value or any part of it.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flowcred.bindings.findings import Finding

# (regex, shape name). Searched anywhere in a value ("Bearer xoxb-..." is still a Slack token).
_SHAPES: tuple[tuple[str, str], ...] = (
    (r"xoxb-[0-9A-Za-z-]{10,}", "Slack bot token"),
    (r"xoxp-[0-9A-Za-z-]{10,}", "Slack user token"),
    (r"xox[aers]-[0-9A-Za-z-]{10,}", "Slack token"),
    (r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}", "SendGrid API key"),
    (r"sk_live_[0-9A-Za-z]{16,}", "Stripe live secret key"),
    (r"rk_live_[0-9A-Za-z]{16,}", "Stripe live restricted key"),
    (r"gh[pousr]_[A-Za-z0-9]{36,}", "GitHub token"),
    (r"github_pat_[A-Za-z0-9_]{22,}", "GitHub fine-grained token"),
    (r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])", "AWS access key id"),
    (r"AIza[0-9A-Za-z_-]{35}", "Google API key"),
    (r"(?<![A-Z0-9])SU[A-Z2-7]{56}(?![A-Z0-9])", "NATS nkey seed"),
    (r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}", "JSON Web Token"),
    (r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----", "PEM private key"),
    (r"AC[0-9a-f]{32}[:/ ][0-9a-f]{32}", "Twilio Account SID with auth token"),
)
_SHAPE_RE = re.compile("|".join(f"(?P<s{i}>{rx})" for i, (rx, _) in enumerate(_SHAPES)))
_SHAPE_NAMES = {f"s{i}": name for i, (_, name) in enumerate(_SHAPES)}
# A cheap gate: values without any of these cannot match a shape.
_SHAPE_GATE = re.compile(r"xox|SG\.|_live_|gh[pousr]_|github_pat_|AKIA|ASIA|AIza|SU|eyJ|-----|AC")

_TWILIO_SID = re.compile(r"AC[0-9a-f]{32}")
_HEX32 = re.compile(r"[0-9a-f]{32}")

_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@")

# Words of a key that make it secret-named when last (or in these pairs anywhere).
_SECRET_LAST = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "pat",
        "seed",
    }
)
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("access", "key"),
        ("signing", "key"),
        ("auth", "key"),
        ("p8", "key"),
        ("account", "key"),
        ("sas", "token"),
    }
)
# A last word saying the key holds where or what the secret is, not the secret.
_REFERENCE_LAST = frozenset(
    {
        "name",
        "names",
        "path",
        "file",
        "url",
        "uri",
        "endpoint",
        "id",
        "ids",
        "ref",
        "reference",
        "env",
        "var",
        "type",
        "kind",
        "header",
        "prefix",
        "length",
        "ttl",
        "expiry",
        "field",
        "location",
        "policy",
        "mode",
        "source",
        "handle",
        "enabled",
        "required",
    }
)
# Keys that are ordinary config although a word says "token" or "key".
_NOT_SECRET_KEYS = frozenset({"devicetoken", "pushtoken", "maxtokens", "csrftoken", "tokenizer"})

_PLACEHOLDER = re.compile(
    r"""^(?:
        \$\{[^}]*\}            # ${VAR}
      | \$[A-Za-z_][A-Za-z0-9_]*  # $VAR
      | \{\{.*\}\}             # {{ template }}
      | <[^>]*>                # <your-token>
      | %\([^)]*\)s            # %(name)s
      | @[A-Za-z0-9_.:/-]+     # @secret_name
      | (?:env|vault|secret|secrets|ref|aws-sm|k8s|file|op|keyring|flowcred):\S+
    )$""",
    re.VERBOSE,
)
_WORDS = re.compile(r"[A-Z]+[0-9]*(?![a-z])|[A-Z]?[a-z]+[0-9]*|[0-9]+")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9]+(?:[._:-][A-Za-z0-9]+)+$")
_TOKENISH = re.compile(r"^[A-Za-z0-9+/=_-]+$")


def key_words(key: str) -> list[str]:
    """``clientSecret`` / ``client_secret`` / ``Client-Secret`` -> ``["client", "secret"]``."""
    return [w.lower() for w in _WORDS.findall(key)]


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a config key is named like something that holds a secret."""
    words = key_words(key)
    if not words or "".join(words) in _NOT_SECRET_KEYS:
        return False
    last = words[-1]
    if last in _REFERENCE_LAST:
        return False
    if last in _SECRET_LAST:
        return True
    joined = "".join(words)
    if joined in ("apikey", "authtoken", "accesstoken", "refreshtoken", "bearerauth"):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def _names_an_identifier(key: str) -> bool:
    # ``spreadsheet_id``, ``templateId``, ``object_name``: random-looking ids are ordinary there.
    words = key_words(key)
    return bool(words) and words[-1] in _REFERENCE_LAST


def is_reference(value: str) -> bool:
    """Whether ``value`` points at a secret instead of being one."""
    return bool(_PLACEHOLDER.match(value.strip()))


def token_shape(value: str) -> str | None:
    """The name of the known token shape found in ``value``, or None."""
    if not _SHAPE_GATE.search(value):
        return None
    match = _SHAPE_RE.search(value)
    if match is None or match.lastgroup is None:
        return None
    return _SHAPE_NAMES[match.lastgroup]


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_high_entropy(value: str) -> bool:
    """A random-looking token that is not one of the ordinary shapes of config."""
    if len(value) < 24 or len(value) > 4096 or not _TOKENISH.match(value):
        return False
    if _UUID.match(value) or _HEX.match(value) or _IDENTIFIER.match(value):
        return False
    if "://" in value or value.startswith(("/", "./", "../", "~")) or "@" in value:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    if not (has_digit and has_lower) and not (has_upper and has_lower and has_digit):
        return False
    if value.count("/") > 2:  # a relative path or a route
        return False
    return shannon_entropy(value) >= 4.0


@dataclass(frozen=True, slots=True)
class Hit:
    """One detection: rule id and what was seen (a shape name or a key description)."""

    rule: str
    what: str


def classify(key: str | None, value: str, *, sibling_values: tuple[str, ...] = ()) -> Hit | None:
    """The strongest detection for one string value under ``key``, or None."""
    shape = token_shape(value)
    if shape is not None:
        return Hit("SECR101", shape)
    if _TWILIO_SID.fullmatch(value.strip()) and any(
        _HEX32.fullmatch(s.strip()) for s in sibling_values
    ):
        return Hit("SECR101", "Twilio Account SID with auth token")
    if "://" in value and _URL_PASSWORD.search(value):
        match = _URL_PASSWORD.search(value)
        if match is not None and not is_reference(match.group(1)):
            return Hit("SECR103", "password in URL")
    stripped = value.strip()
    if key is not None and stripped and is_secret_key(key) and not is_reference(stripped):
        return Hit("SECR100", "secret-named key")
    if looks_high_entropy(stripped) and not (key and _names_an_identifier(key)):
        return Hit("SECR102", "high-entropy string")
    return None


_HINTS = {
    "SECR101": "remove it from the flow, revoke it, and reference a stored credential instead",
    "SECR103": "drop the password from the URL and keep it in a stored credential",
    "SECR100": "store the value as a credential (or a secret source) and reference it",
    "SECR102": "if this is a secret, move it to a credential; otherwise ignore this warning",
}


def _describe(hit: Hit, where: str) -> str:
    if hit.rule == "SECR101":
        return f"{hit.what} pasted into config at {where}"
    if hit.rule == "SECR103":
        return f"URL with a password at {where}"
    if hit.rule == "SECR100":
        return f"literal value under secret-named key at {where}"
    return f"high-entropy string at {where} may be a secret"


def shown(value: str) -> str:
    """``value`` for a message (a path, handle, node id, secret name, scope), unless it looks
    like a secret itself: then ``<hidden>`` (someone may paste a token where a name belongs)."""
    if len(value) > 256 or token_shape(value) or looks_high_entropy(value):
        return "<hidden>"
    return "".join(c if c.isprintable() else "?" for c in value)


_LONG_RUN = re.compile(r"[0-9a-fA-F]{16,}|[0-9]{8,}|[A-Za-z0-9+/]{32,}")


@functools.lru_cache(maxsize=4096)  # keys repeat across tasks: compute each once
def _safe_key(key: str) -> str:
    # A key is shown in the path unless it is itself a token (a secret pasted as a key).
    if token_shape(key) or looks_high_entropy(key) or len(key) > 64 or _LONG_RUN.search(key):
        return "<key>"
    return "".join(c if c.isprintable() else "?" for c in key)


def scan(
    node: Node | None,
    file: str,
    where: str,
    *,
    key: str | None = None,
    reference_keys: frozenset[str] = frozenset(),
    secret_suffix_refs: bool = False,
) -> list[Finding]:
    """Findings for every raw secret in the subtree ``node`` (``where`` is its path).

    ``reference_keys``: keys whose values are references by contract; their values are only
    checked for token shapes. ``secret_suffix_refs``: every ``<field>_secret`` key is such a
    reference (the Credential Provider bindings convention; in a flow's node config
    ``client_secret`` is a literal secret, so this is off there).
    """
    return list(_walk(node, file, where, key, (), reference_keys, secret_suffix_refs))


def _walk(
    node: Node | None,
    file: str,
    where: str,
    key: str | None,
    siblings: tuple[str, ...],
    reference_keys: frozenset[str],
    suffix_refs: bool,
) -> Iterator[Finding]:
    if isinstance(node, ScalarNode):
        if node.tag != "tag:yaml.org,2002:str" or not node.value:
            return
        is_ref_key = key is not None and (
            key in reference_keys or (suffix_refs and key.endswith("_secret"))
        )
        hit = classify(None if is_ref_key else key, node.value, sibling_values=siblings)
        if hit is None or (is_ref_key and hit.rule != "SECR101"):
            return
        mark = node.start_mark
        yield Finding.of(
            hit.rule, file, mark.line + 1, mark.column + 1, _describe(hit, where), _HINTS[hit.rule]
        )
    elif isinstance(node, MappingNode):
        values = tuple(
            v.value for _, v in node.value if isinstance(v, ScalarNode) and isinstance(v.value, str)
        )
        for k, v in node.value:
            name = k.value if isinstance(k, ScalarNode) else "?"
            if isinstance(k, ScalarNode) and token_shape(k.value):
                mark = k.start_mark
                yield Finding.of(
                    "SECR101",
                    file,
                    mark.line + 1,
                    mark.column + 1,
                    f"{token_shape(k.value)} used as a key at {where}",
                    _HINTS["SECR101"],
                )
            child = f"{where}.{_safe_key(name)}" if where else _safe_key(name)
            yield from _walk(v, file, child, name, values, reference_keys, suffix_refs)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, file, f"{where}[{index}]", key, (), reference_keys, suffix_refs)
