"""A local stand-in for Amazon Neptune's bulk loader API, which cannot run here (a test double of an AWS service).

It follows the requests and responses Neptune's user guide documents ("Neptune Loader Command", "Neptune Loader
Get-Status API"; the shapes are quoted in c360.graph.neptune_loader's docstring), and does the work for real:
- every request must carry a SigV4 `Authorization` for service `neptune-db` in the cluster's region, whose
  signature is computed again here from the method, path, query, signed headers and body with the test's
  credentials; a missing, malformed or wrong one is answered 403 `AccessDeniedException`, as Neptune with IAM
  database authentication does;
- `POST /loader` checks the body (an s3:// source, format csv, an IAM role ARN, the region, "TRUE"/"FALSE" flags,
  a documented mode and parallelism): 400 `BadRequestException` naming the field, else 200 with a loadId;
- the load runs in a thread: every object under the source prefix is read from the S3 server it is given (moto's),
  and loaded into a real graph store (`target`) by c360's own loader (graph.loader.load_graph_files); an error becomes
  LOAD_FAILED with one error log entry in Neptune's shape (FROM_OR_TO_VERTEX_ARE_MISSING for an edge whose vertex
  is missing, PARSING_ERROR otherwise);
- `GET /loader/{loadId}` answers LOAD_IN_PROGRESS at least once, then the end state, with totalRecords the rows
  read; `?details=true&errors=true` adds the error log.
"""

from __future__ import annotations

import calendar
import json
import re
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
                           r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
                           r"Signature=(?P<signature>[0-9a-f]{64})")
FLAGS = ("failOnError", "updateSingleCardinalityProperties", "queueRequest")
PARALLELISM = ("LOW", "MEDIUM", "HIGH", "OVERSUBSCRIBE")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/\S+")


class _Load:
    def __init__(self, load_id: str, body: dict):
        self.id, self.body = load_id, body
        self.status, self.records, self.errors = "LOAD_IN_PROGRESS", 0, []
        self.polls, self.started = 0, time.time()
        self.done = threading.Event()


class NeptuneLoaderDouble:
    """The loader API on a free loopback port (`url`), loading into the graph store `target` from the S3 server at
    `s3_endpoint`. `requests` records (method, path, parsed body); `fetched` the bytes of every object it read."""

    def __init__(self, target: str, s3_endpoint: str, region: str, access_key: str, secret_key: str):
        self.target, self.s3_endpoint, self.region = target, s3_endpoint, region
        self._key, self._secret = access_key, secret_key
        self.requests: list[tuple[str, str, dict | None]] = []
        self.fetched: dict[str, bytes] = {}
        self.loads: dict[str, _Load] = {}
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                double._handle(self, "POST")

            def do_GET(self):
                double._handle(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> NeptuneLoaderDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        for load in self.loads.values():
            load.done.wait(30)

    # ---- HTTP ----

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        u = urlparse(h.path)
        denied = self._check_signature(method, h.path, h.headers, body)
        if denied:
            return self._answer(h, 403, {"code": "AccessDeniedException", "requestId": str(uuid.uuid4()),
                                         "detailedMessage": denied})
        parsed = json.loads(body) if body else None
        self.requests.append((method, u.path, parsed))
        if method == "POST" and u.path == "/loader":
            return self._start(h, parsed or {})
        m = re.fullmatch(r"/loader/([0-9a-f-]+)", u.path)
        if method == "GET" and m and m.group(1) in self.loads:
            query = {k: v[0] for k, v in parse_qs(u.query).items()}
            return self._answer(h, 200, {"status": "200 OK", "payload": self._status(self.loads[m.group(1)], query)})
        self._answer(h, 404 if m else 400, {"code": "LoadNotFoundException" if m else "BadRequestException",
                                            "requestId": str(uuid.uuid4()), "detailedMessage": f"{method} {u.path}"})

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _check_signature(self, method: str, path: str, headers, body: bytes) -> str | None:
        """None when the request is signed by the test's key for neptune-db in the region, else why not."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        m = AUTHORIZATION.fullmatch(headers.get("Authorization") or "")
        if not m:
            return "missing or malformed Authorization header (SigV4 expected)"
        if (m["key"], m["service"], m["region"]) != (self._key, "neptune-db", self.region):
            return f"credential scope {m['key']}/{m['region']}/{m['service']} is not this cluster's"
        amz_date = headers.get("X-Amz-Date") or ""
        if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or not amz_date.startswith(m["date"]) or \
                abs(time.time() - calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))) > 300:
            return f"X-Amz-Date {amz_date!r} is not the signature's date or not within 5 minutes"
        signed = m["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return "host and x-amz-date must be signed"
        request = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body,
                             headers={name: headers.get(name, "") for name in signed})
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(self._key, self._secret), "neptune-db", self.region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return None if expected == m["signature"] else "the request signature does not match"

    # ---- the loader ----

    def _start(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        bad = self._invalid(body)
        if bad:
            return self._answer(h, 400, {"code": "BadRequestException", "requestId": str(uuid.uuid4()),
                                         "detailedMessage": bad})
        load = _Load(str(uuid.uuid4()), body)
        self.loads[load.id] = load
        threading.Thread(target=self._load, args=(load,), daemon=True).start()
        self._answer(h, 200, {"status": "200 OK", "payload": {"loadId": load.id}})

    def _invalid(self, body: dict) -> str | None:
        if not str(body.get("source", "")).startswith("s3://"):
            return "source: an s3:// URI is required"
        if body.get("format") != "csv":
            return f"format: {body.get('format')!r} is not csv (the Gremlin CSV format)"
        if not ROLE_ARN.fullmatch(str(body.get("iamRoleArn", ""))):
            return "iamRoleArn: an IAM role ARN is required"
        if body.get("region") != self.region:
            return f"region: {body.get('region')!r} is not the cluster's region {self.region}"
        for flag in FLAGS:
            if body.get(flag, "FALSE") not in ("TRUE", "FALSE"):
                return f"{flag}: must be \"TRUE\" or \"FALSE\""
        if body.get("mode", "AUTO") not in ("NEW", "RESUME", "AUTO"):
            return "mode: must be NEW, RESUME or AUTO"
        if body.get("parallelism", "HIGH") not in PARALLELISM:
            return f"parallelism: must be one of {', '.join(PARALLELISM)}"
        return None

    def _load(self, load: _Load) -> None:
        import boto3

        from c360.errors import InputError
        from c360.graph.loader import load_graph_files

        u = urlparse(load.body["source"])
        bucket, prefix = u.netloc, u.path.lstrip("/")
        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint, region_name=self.region,
                          aws_access_key_id=self._key, aws_secret_access_key=self._secret)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for obj in page.get("Contents", []):
                        data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                        self.fetched[obj["Key"]] = data
                        (Path(tmp) / Path(obj["Key"]).name).write_bytes(data)
                        load.records += max(0, data.count(b"\r\n") - 1)   # rows after the header
                try:
                    load_graph_files(tmp, self.target, progress=False)
                    load.status = "LOAD_COMPLETED"
                except InputError as exc:
                    name, _, message = str(exc).partition(": ")
                    load.status = "LOAD_FAILED"
                    load.errors.append({
                        "errorCode": "FROM_OR_TO_VERTEX_ARE_MISSING" if "does not exist" in message else "PARSING_ERROR",
                        "errorMessage": message, "fileName": f"s3://{bucket}/{prefix}{Path(name).name}",
                        "recordNum": 0})
        finally:
            load.done.set()

    def _status(self, load: _Load, query: dict) -> dict:
        load.polls += 1
        status = load.status if load.done.is_set() and load.polls > 1 else "LOAD_IN_PROGRESS"
        payload = {"feedCount": [{status: 1}],
                   "overallStatus": {"fullUri": load.body["source"], "runNumber": 1, "retryNumber": 0,
                                     "status": status, "totalTimeSpent": int(time.time() - load.started),
                                     "startTime": int(load.started), "totalRecords": load.records,
                                     "totalDuplicates": 0, "parsingErrors": 0, "datatypeMismatchErrors": 0,
                                     "insertErrors": len(load.errors) if load.done.is_set() else 0}}
        if query.get("errors") == "true" and load.done.is_set():
            payload["errors"] = {"startIndex": 1 if load.errors else 0, "endIndex": len(load.errors),
                                 "loadId": load.id, "errorLogs": load.errors}
        return payload
