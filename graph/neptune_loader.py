"""Amazon Neptune's bulk loader for large graphs: the export's parts uploaded to S3, then loaded by the loader API.

`load_with_neptune(csv_dir, target, settings, run_id)`, what the nightly's graph step runs when
`graph.neptune_loader` is configured and the export is large enough (`wanted`):
1. with `drop`, the dangling-edge check and the store's drop (as graph.loader does before a dropped load);
2. every part (graph.neptune_parts; String values EXACT, since the loader stores what a file holds) is uploaded with
   boto3 under `<s3_prefix>/<run id>/`, server-side encrypted (the parts hold personal data), after removing what an
   earlier attempt of the run left there (Neptune loads every object under the prefix);
3. `POST /loader` on the cluster's endpoint; `GET /loader/{loadId}` every `poll_interval_s` until the load ends:
   LOAD_COMPLETED passes, any other end (LOAD_FAILED, LOAD_CANCELLED_*, LOAD_S3_*_ERROR, ...) raises LoaderFailed
   naming the status, its error counters and the loader's error log (`?details=true&errors=true`);
4. after a completed load the uploaded objects are deleted (the graph holds them now; after a failure they stay, as
   the error log names them), and the store's counts by label are read through Gremlin, for the graph gate.

Requests and responses as Neptune's user guide documents them ("Neptune Loader Command", "Neptune Loader Get-Status
API"; values are the strings "TRUE"/"FALSE"):

    POST /loader   Content-Type: application/json
        {"source": "s3://BUCKET/PREFIX/RUN/", "format": "csv", "iamRoleArn": "arn:aws:iam::123456789012:role/NAME",
         "region": "us-east-1", "mode": "NEW", "failOnError": "TRUE", "parallelism": "HIGH",
         "updateSingleCardinalityProperties": "TRUE", "queueRequest": "TRUE"}
      → 200 {"status": "200 OK", "payload": {"loadId": "ef478d76-d9da-4d94-8ff1-08d9d4863aa5"}}
    GET /loader/{loadId}[?details=true&errors=true&page=1&errorsPerPage=N]
      → 200 {"status": "200 OK", "payload": {
             "feedCount": [{"LOAD_FAILED": 1}],
             "overallStatus": {"fullUri": "s3://...", "runNumber": 1, "retryNumber": 0, "status": "LOAD_FAILED",
                               "totalTimeSpent": 3, "startTime": 1700000000, "totalRecords": 5, "totalDuplicates": 0,
                               "parsingErrors": 0, "datatypeMismatchErrors": 0, "insertErrors": 1},
             "errors": {"startIndex": 1, "endIndex": 1, "loadId": "...",
                        "errorLogs": [{"errorCode": "FROM_OR_TO_VERTEX_ARE_MISSING", "errorMessage": "...",
                                       "fileName": "s3://.../edge-SameAs-00000.csv", "recordNum": 3}]}}}
    an error: 4xx/5xx {"code": "BadRequestException", "requestId": "...", "detailedMessage": "..."}

Every request is SigV4-signed for service `neptune-db` (graph.neptune_auth) with botocore's default credential chain,
unless `gremlin_iam` is false (a cluster without IAM database authentication). boto3 is the optional extra `neptune`.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from c360.errors import C360Error, InputError
from c360.graph.neptune_auth import SigV4Signer, region_of
from c360.graph.neptune_csv import EXACT
from c360.graph.neptune_parts import GraphFileSet, graph_files

log = logging.getLogger(__name__)

RUNNING = frozenset({"LOAD_NOT_STARTED", "LOAD_IN_QUEUE", "LOAD_IN_PROGRESS"})
COMPLETED = "LOAD_COMPLETED"
ERROR_COUNTERS = ("totalRecords", "totalDuplicates", "parsingErrors", "datatypeMismatchErrors", "insertErrors")
ERRORS_SHOWN = 10          # error log entries asked for, and named in the failure
HTTP_TIMEOUT_S = 60.0
POLL_TRIES = 5             # consecutive unanswered polls before the step gives up (the load itself goes on)


class LoaderFailed(C360Error):
    """Neptune's bulk loader refused the request, or the load ended otherwise than LOAD_COMPLETED."""


def wanted(cfg, counts: dict[str, dict[str, int]]) -> bool:
    """True when the loader is configured (graph.neptune_loader) and the export (counts by label) holds at least
    `min_elements` vertices and edges."""
    total = sum(sum(by_label.values()) for by_label in counts.values())
    return cfg.configured and total >= cfg.min_elements


# ---- S3 -----------------------------------------------------------------------------------------------------

def _boto3():
    try:
        import boto3
    except ImportError:
        raise InputError("graph.neptune_loader: uploading to S3 needs boto3: pip install 'c360[neptune]'") from None
    return boto3


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes at its ends) of s3://BUCKET[/PREFIX]."""
    u = urlparse(uri)
    return u.netloc, u.path.strip("/")


def _delete_prefix(s3, bucket: str, prefix: str) -> int:
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:  # at most 1000 a page, as delete_objects takes
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def upload(files: GraphFileSet, s3, bucket: str, prefix: str) -> int:
    """Put every part under `prefix/` (emptied first) in `bucket`; returns the number of files."""
    stale = _delete_prefix(s3, bucket, prefix + "/")
    if stale:
        log.info("removed %d objects an earlier attempt left under s3://%s/%s/", stale, bucket, prefix)
    for f in files.all:
        s3.upload_file(str(f), bucket, f"{prefix}/{f.name}",
                       ExtraArgs={"ServerSideEncryption": "AES256", "ContentType": "text/csv"})
    return len(files.all)


# ---- the loader API ---------------------------------------------------------------------------------------

def loader_endpoint(cfg, target) -> str:
    """https://HOST:PORT of the loader API: the setting, else the graph store's wss://HOST:PORT (Neptune's Gremlin
    and loader endpoints share host and port)."""
    if cfg.endpoint:
        return cfg.endpoint.rstrip("/")
    if getattr(target, "scheme", None) == "wss" and target.host:
        return f"https://{target.host}:{target.port or 8182}"
    raise InputError("graph.neptune_loader.endpoint: set the loader's https://HOST:PORT (C360_NEPTUNE_LOADER_ENDPOINT) "
                     f"for graph store {str(target)!r} (only a wss:// Neptune endpoint names it)")


class LoaderApi:
    """The loader's HTTP API on one endpoint, every request signed with `signer` (None: unsigned)."""

    def __init__(self, endpoint: str, signer: SigV4Signer | None):
        self.endpoint, self._signer = endpoint.rstrip("/"), signer

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        url = self.endpoint + path
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._signer is not None:
            headers = self._signer.sign(method, url, data, headers)
        request = urllib.request.Request(url, data=data if body is not None else None, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise LoaderFailed(f"Neptune loader {method} {path}: HTTP {exc.code} {_error_text(exc.read())}") from None

    def start(self, body: dict) -> str:
        """POST /loader; the load's id."""
        answer = self._call("POST", "/loader", body)
        load_id = (answer.get("payload") or {}).get("loadId")
        if not load_id:
            raise LoaderFailed(f"Neptune loader POST /loader: no loadId in the answer {answer}")
        return load_id

    def status(self, load_id: str, errors: bool = False) -> dict:
        """GET /loader/{loadId}'s payload (with details and the first ERRORS_SHOWN error log entries when
        `errors`)."""
        query = f"?details=true&errors=true&page=1&errorsPerPage={ERRORS_SHOWN}" if errors else ""
        return self._call("GET", f"/loader/{load_id}{query}").get("payload") or {}


def _error_text(raw: bytes) -> str:
    """An error answer's code and detailed message (or its text)."""
    try:
        err = json.loads(raw)
        return f"{err.get('code', '')}: {err.get('detailedMessage', '')}".strip(": ") or raw.decode()
    except (ValueError, AttributeError):
        return raw.decode("utf-8", "replace")[:500]


def failure(load_id: str, payload: dict) -> str:
    """One line naming a failed load's status, its counters and the loader's error log entries."""
    overall = payload.get("overallStatus") or {}
    counters = ", ".join(f"{k} {overall[k]}" for k in ERROR_COUNTERS if k in overall)
    errors = (payload.get("errors") or {}).get("errorLogs") or []
    named = "; ".join(f"{e.get('fileName', '?')} record {e.get('recordNum', '?')}: {e.get('errorCode', '?')}: "
                      f"{e.get('errorMessage', '')}" for e in errors)
    return (f"Neptune bulk load {load_id} of {overall.get('fullUri', '?')} ended {overall.get('status', '?')}"
            f"{f' ({counters})' if counters else ''}: {named or 'the loader logged no error entries'}")


def wait(api: LoaderApi, load_id: str, poll_s: float, timeout_s: float, sleep=time.sleep) -> dict:
    """Poll until the load ends; its last status payload when it completed, else LoaderFailed (failure())."""
    deadline, last, misses = time.monotonic() + timeout_s, None, 0
    while True:
        try:
            payload = api.status(load_id)
            misses = 0
        except urllib.error.URLError as exc:   # a restart or a network blip: the load goes on without us
            misses += 1
            if misses >= POLL_TRIES:
                raise LoaderFailed(f"Neptune bulk load {load_id}: {api.endpoint} unanswered {misses} times ({exc})") from None
            payload = None
        status = ((payload or {}).get("overallStatus") or {}).get("status")
        if status and status != last:
            log.info("Neptune bulk load %s: %s (%s records)", load_id, status,
                     payload["overallStatus"].get("totalRecords", "?"))
            last = status
        if status == COMPLETED:
            return payload
        if status is not None and status not in RUNNING:
            raise LoaderFailed(failure(load_id, api.status(load_id, errors=True)))
        if time.monotonic() >= deadline:
            raise LoaderFailed(f"Neptune bulk load {load_id}: still {last} after {timeout_s:.0f} s "
                               "(graph.neptune_loader.timeout_s); it goes on in Neptune")
        sleep(poll_s)


# ---- the whole load -----------------------------------------------------------------------------------------

def _region(settings, endpoint: str) -> str:
    cfg = settings.graph.neptune_loader
    region = cfg.region or settings.gremlin_region
    if not region:
        import botocore.session

        region = botocore.session.get_session().get_config_variable("region") or region_of(urlparse(endpoint).hostname)
    if not region:
        raise InputError("graph.neptune_loader.region: the bucket's and cluster's region is needed "
                         "(C360_NEPTUNE_REGION, C360_GREMLIN_REGION or AWS_DEFAULT_REGION)")
    return region


def _signer(settings, endpoint: str, region: str) -> SigV4Signer | None:
    if settings.gremlin_iam is False:
        return None
    signer = SigV4Signer.from_default_chain(endpoint, region, required=False)
    if signer is None:
        raise InputError("graph.neptune_loader: no AWS credentials in the default chain (environment, profile, "
                         "instance or container role) to upload to S3 and sign the loader's requests with")
    return signer


def request_body(cfg, source: str, region: str) -> dict:
    """The POST /loader body (module docstring). `mode` NEW: a resumed run uploads its parts again, and AUTO would
    resume an earlier failed load of the same source, skipping the files that load had taken; queued behind other
    loads rather than refused; a property declared single that is loaded again gets the new value."""
    return {"source": source, "format": "csv", "iamRoleArn": cfg.iam_role_arn, "region": region, "mode": "NEW",
            "failOnError": "TRUE", "parallelism": cfg.parallelism, "updateSingleCardinalityProperties": "TRUE",
            "queueRequest": "TRUE"}


def load_with_neptune(csv_dir: str | Path, target, settings, run_id: str, drop: bool = False) -> dict:
    """Load an export folder through Neptune's bulk loader into `target` (the graph store the loader fills, read for
    the counts). Returns {"counts": the store's counts(), "load_id", "source", "files", "status", "total_records"}."""
    from c360.graph.loader import check_endpoints
    from c360.graph.store import open_store

    boto3 = _boto3()
    from botocore.exceptions import BotoCoreError, ClientError

    cfg = settings.graph.neptune_loader
    files = graph_files(csv_dir)
    if files.values != EXACT:
        raise InputError(f"{files.dir}: its String values are escaped for spreadsheets; Neptune's loader would store "
                         "the escape: export it again without --spreadsheet-safe")
    endpoint = loader_endpoint(cfg, target)
    region = _region(settings, endpoint)
    signer = _signer(settings, endpoint, region)
    if drop:  # as graph.loader before a dropped load: a dangling edge is refused before anything is dropped
        check_endpoints(files)
        with open_store(target, settings=settings) as store:
            store.drop_all()
    bucket, base = split_s3(cfg.s3_prefix)
    prefix = f"{base}/{run_id}" if base else run_id
    s3 = boto3.client("s3", region_name=region, endpoint_url=cfg.s3_endpoint_url)
    try:
        n = upload(files, s3, bucket, prefix)
    except (BotoCoreError, ClientError) as exc:   # no such bucket, access denied, ...: name the setting
        raise LoaderFailed(f"graph.neptune_loader.s3_prefix {cfg.s3_prefix}: upload failed: {exc}") from None
    source = f"s3://{bucket}/{prefix}/"
    api = LoaderApi(endpoint, signer)
    t0 = time.monotonic()
    try:
        load_id = api.start(request_body(cfg, source, region))
    except urllib.error.URLError as exc:
        raise LoaderFailed(f"Neptune loader {endpoint}: unreachable ({exc.reason})") from None
    log.info("Neptune bulk load %s of %d files from %s", load_id, n, source)
    payload = wait(api, load_id, cfg.poll_interval_s, cfg.timeout_s)
    try:
        _delete_prefix(s3, bucket, prefix + "/")
    except (BotoCoreError, ClientError) as exc:   # the graph is loaded: a copy left behind fails nothing
        log.warning("Neptune bulk load %s completed, but its parts stay under %s: %s", load_id, source, exc)
    with open_store(target, settings=settings) as store:
        counts = store.counts()
    return {"counts": counts, "load_id": load_id, "source": source, "files": n, "status": COMPLETED,
            "total_records": payload["overallStatus"].get("totalRecords"), "seconds": round(time.monotonic() - t0, 1)}
