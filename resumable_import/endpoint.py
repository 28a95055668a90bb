"""The endpoint URL, parsed once, strictly, and the safety rule that rests on that parse.

rimport writes only to this machine unless the user says `--allow-remote`, so a stray
AWS_ENDPOINT_URL or profile cannot load a dump into a production table by accident. That
rule is only as good as the parse it judges: URL parsers disagree on backslashes,
userinfo, percent-encoding and exotic IPv4 spellings, so `http://192.0.2.2:8141\\@127.0.0.1`
is 127.0.0.1 to `urllib.parse` and 192.0.2.2 to urllib3, which botocore sends with. Here
an endpoint is accepted only in a form every parser reads alike (scheme, host, optional
port and path, nothing else), and botocore and the fast transport are then given the URL
rebuilt from this parse, so the host that was judged is the host that is written to.

Userinfo (`user:secret@`) is refused outright: credentials come from the AWS chain, and a
URL is stored in the ledger, written to the log and printed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import UsageError

AWS = "aws"  # `--endpoint aws`: the region's public DynamoDB endpoint
DEFAULT = "http://localhost:8000"

_HINT = "give it as http://HOST[:PORT][/PATH], e.g. http://localhost:8000, or `aws`"
# A host name of letters, digits, hyphens and dots (no trailing dot); an IPv4 address in
# dotted decimal; or an IPv6 address in brackets, without a zone id.
_URL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]*)*)",
    re.ASCII,
)
_NUMERIC_HOST = re.compile(r"[0-9.]+|0[xX][0-9A-Fa-f.xX]*|[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as rimport and botocore will both use it."""

    url: str  # `aws`, or the URL rebuilt from its parts: what botocore is given
    host: str = ""  # lower case; an IPv6 address without its brackets
    loopback: bool = False

    def __str__(self) -> str:
        return self.url


def parse(text: str) -> Endpoint:
    """Parse `text`, refusing anything two URL parsers could read two ways."""
    if text == AWS:
        return Endpoint(AWS)
    m = _URL.fullmatch(text)
    if m is None:
        raise UsageError(
            f"{_shown(text)} is not an endpoint URL rimport accepts: {_why(text)}", _HINT
        )
    scheme, host, port, path = m["scheme"], m["host"].lower(), m["port"], m["path"]
    if port is not None and not 0 < int(port) < 65536:
        raise UsageError(f"{_shown(text)}: port {port} is out of range", _HINT)
    if host.startswith("["):
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(
                host[1:-1]
            )
        except ValueError:
            raise UsageError(f"{_shown(text)}: {host} is not an IPv6 address", _HINT) from None
        if address.ipv4_mapped is not None:
            raise UsageError(
                f"{_shown(text)}: an IPv4 address written as IPv6 ({host})",
                f"write it as {address.ipv4_mapped}",
            )
        loopback = address.is_loopback
    elif _NUMERIC_HOST.fullmatch(host):
        try:
            address = ipaddress.IPv4Address(host)  # dotted decimal only, no leading zeros
        except ValueError:
            raise UsageError(
                f"{_shown(text)}: {host} is not an IPv4 address in dotted decimal; resolvers "
                "read such spellings (octal, hex, one number) differently",
                _HINT,
            ) from None
        loopback = address.is_loopback
    else:
        loopback = host == "localhost"
    port_part = f":{port}" if port is not None else ""
    return Endpoint(f"{scheme}://{host}{port_part}{path}", host.strip("[]"), loopback)


def check(endpoint: Endpoint, allow_remote: bool) -> None:
    """Refuse, before anything is written, an endpoint that is not on this machine."""
    if not endpoint.loopback and not allow_remote:
        where = "AWS itself" if endpoint.url == AWS else endpoint.url
        raise UsageError(
            f"refusing to write to {where}: only local endpoints (localhost, 127.0.0.0/8, ::1)"
            " are allowed by default",
            "pass allow_remote=True if you really mean to write to that table",
            param="allow_remote=True",
        )


def is_loopback(url: str) -> bool:
    """Whether `url` is an endpoint on this machine (localhost, 127.0.0.0/8, ::1)."""
    return parse(url).loopback


def redacted(url: str) -> str:
    """A URL as it may be shown: any userinfo (recorded by an older rimport) masked."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", url)


def _shown(text: str) -> str:
    """The refused text, quoted, with any userinfo masked and control characters escaped."""
    return repr(redacted(text))


def _why(text: str) -> str:
    if "@" in text:
        return "it holds a user name or password (credentials come from the AWS chain)"
    if "\\" in text:
        return "it holds a backslash"
    if "%" in text:
        return "it holds a percent-encoded character"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        return "it holds white space or a control character"
    if "?" in text or "#" in text:
        return "it holds a query or a fragment"
    if not re.match(r"https?://", text):
        return "it must start with http:// or https://"
    return "the host must be a name, a dotted IPv4 address or a bracketed IPv6 address"
