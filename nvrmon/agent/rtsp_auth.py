"""Agent side, RTSP authentication: Basic and Digest (RFC 2617 / RFC 7616 with MD5; qop "auth" or none) answers."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" | "digest" (lower case)
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(values: list[str]) -> list[Challenge]:
    """The WWW-Authenticate headers of a 401, each `Scheme k=v, k="v"`; unknown schemes are kept too."""
    challenges = []
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        params = {}
        for match in _PARAM.finditer(rest):
            raw = match[2]
            params[match[1].lower()] = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
        challenges.append(Challenge(scheme.lower(), params))
    return challenges


def choose(challenges: list[Challenge]) -> Challenge | None:
    """Digest (MD5) over Basic: Basic sends the password itself; a digest algorithm we can't compute is skipped."""
    digests = [
        c
        for c in challenges
        if c.scheme == "digest" and c.params.get("algorithm", "MD5").upper() in ("MD5", "MD5-SESS")
    ]
    return digests[0] if digests else next((c for c in challenges if c.scheme == "basic"), None)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass
class Credentials:
    username: str
    password: str
    nc: int = 0  # nonce count: each request answered with the same nonce counts up (RFC 7616 §3.4)

    def authorization(self, challenge: Challenge, method: str, uri: str, cnonce: str | None = None) -> str:
        if challenge.scheme == "basic":
            pair = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        p = challenge.params
        realm, nonce = p.get("realm", ""), p.get("nonce", "")
        algorithm = p.get("algorithm", "")
        qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
        cnonce = cnonce or os.urandom(8).hex()
        ha1 = _md5(f"{self.username}:{realm}:{self.password}")
        if algorithm.upper() == "MD5-SESS":
            ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [f'username="{self.username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        if "auth" in qops:
            self.nc += 1
            nc = f"{self.nc:08x}"
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            fields.append(f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"')
        if algorithm:
            fields.append(f"algorithm={algorithm}")
        if "opaque" in p:
            fields.append(f'opaque="{p["opaque"]}"')
        return "Digest " + ", ".join(fields)
