"""Amazon Neptune IAM database authentication: a fresh SigV4 signature for every WebSocket handshake.

Neptune accepts a signature for a few minutes only, so headers signed once (as `C360_GREMLIN_HEADERS` used to carry
them) fail on the first reconnect of a long load or a long-running API. `SigV4Signer.headers(url)` signs a GET of
`https://<endpoint>:<port>/gremlin` for service `neptune-db` with botocore's `SigV4Auth`, with credentials from
botocore's default chain (environment, shared config/credentials files and profiles, SSO, container and instance
roles; refreshable credentials are refreshed by botocore), at the moment of each handshake
(graph.gremlin_store.SigningTransport).

When to sign (`signer_for`): the `gremlin_iam` setting (C360_GREMLIN_IAM) true; unset, for endpoints under
`.neptune.amazonaws.com` when the default chain has credentials. Headers given explicitly with an `Authorization`
(C360_GREMLIN_HEADERS) are sent as they are, unsigned. Region: the `gremlin_region` setting (C360_GREMLIN_REGION),
else botocore's (AWS_DEFAULT_REGION, the profile's), else the one in the endpoint's name.
botocore is the optional extra `neptune` (pip install 'c360[neptune]').
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlparse

from c360.errors import InputError

log = logging.getLogger(__name__)
SERVICE = "neptune-db"
_NEPTUNE_HOST = re.compile(r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.neptune\.amazonaws\.com\Z")


def is_neptune_host(host: str | None) -> bool:
    """True for Neptune endpoint names (`<cluster>.<id>.<region>.neptune.amazonaws.com`)."""
    return bool(host and _NEPTUNE_HOST.search(host.lower()))


def region_of(host: str | None) -> str | None:
    """The region in a Neptune endpoint's name (None for other hosts)."""
    m = _NEPTUNE_HOST.search((host or "").lower())
    return m.group("region") if m else None


def signed_url(ws_url: str) -> str:
    """The HTTP(S) request a WebSocket handshake is signed as: wss → https, ws → http, same host, port and path."""
    u = urlparse(ws_url)
    return u._replace(scheme="https" if u.scheme == "wss" else "http").geturl()


def _botocore():
    try:
        import botocore.session  # noqa: F401
    except ImportError:
        raise InputError("Neptune IAM authentication needs botocore: pip install 'c360[neptune]'") from None
    import botocore

    return botocore


class SigV4Signer:
    """SigV4 headers (`Authorization`, `X-Amz-Date`, `X-Amz-Security-Token` with temporary credentials) for one
    handshake, signed when asked."""

    def __init__(self, region: str, credentials, service: str = SERVICE):
        if not region:
            raise InputError("gremlin_region: Neptune IAM needs a region (C360_GREMLIN_REGION or AWS_DEFAULT_REGION)")
        self.region, self.service, self._credentials = region, service, credentials

    @classmethod
    def from_default_chain(cls, ws_url: str, region: str | None = None, required: bool = True) -> SigV4Signer | None:
        """A signer with botocore's default credential chain; None when it finds no credentials and not
        `required` (else InputError)."""
        _botocore()
        import botocore.session

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            if required:
                raise InputError("gremlin_iam: no AWS credentials in the default chain (environment, profile, "
                                 "instance or container role) to sign Neptune requests with")
            return None
        region = region or session.get_config_variable("region") or region_of(urlparse(ws_url).hostname)
        return cls(region, credentials)

    def headers(self, ws_url: str) -> dict[str, str]:
        """Signed headers for a handshake to `ws_url`, dated now."""
        return self.sign("GET", signed_url(ws_url))

    def sign(self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, str]:
        """`headers` plus the signature of an HTTP(S) request (its body hashed in), dated now: the handshakes above
        and the bulk loader's requests (graph.neptune_loader)."""
        _botocore()
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        creds = self._credentials
        if hasattr(creds, "get_frozen_credentials"):  # refreshable: one consistent (key, secret, token) triple
            creds = creds.get_frozen_credentials()
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        SigV4Auth(creds, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


def signer_for(ws_url: str, headers: dict | None, iam: bool | None, region: str | None) -> SigV4Signer | None:
    """The signer a connection to `ws_url` uses (see the module docstring), or None."""
    if headers and any(k.lower() == "authorization" for k in headers):
        return None  # signed by the caller: an explicit override
    host = urlparse(ws_url).hostname
    if iam is False or (iam is None and not is_neptune_host(host)):
        return None
    if iam is None:
        try:
            signer = SigV4Signer.from_default_chain(ws_url, region, required=False)
        except InputError as exc:  # botocore missing: a Neptune cluster without IAM needs none
            log.info("not signing Neptune requests: %s", exc)
            return None
        if signer is None:
            log.info("no AWS credentials found: Neptune requests to %s are not signed", host)
        return signer
    return SigV4Signer.from_default_chain(ws_url, region)
