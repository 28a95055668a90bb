"""An S3 object as a seekable raw stream, read in ranged GETs.

Memory stays at one read: a GET's body is read a buffer at a time. A reader's first GET
asks for `FIRST` bytes (enough for the layout to be detected, which opens the object a few
times and reads little of it); once a reader goes past them, the next GET asks for the
rest of the object, one request for the whole import. A GET that breaks off (a reset
connection, a timeout) is asked again from the byte reached, a few times, before the run
stops, resumably. Every GET names the
ETag (and the version) that HeadObject found first, so an object replaced while it is read
is refused instead of being read half old, half new.

Credentials, region and endpoint come from the usual AWS chain; `AWS_ENDPOINT_URL_S3` (or
`AWS_ENDPOINT_URL`) points at a local S3 such as moto. Where the dump is read from is not
the loopback rule's concern: that rule is about where items are written.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .dynamo import aws_session
from .errors import Arg, FileChangedError, InputError, Text

FIRST = 8 << 20  # bytes of a reader's first GET
_ATTEMPTS = 5


@dataclass(frozen=True)
class Head:
    size: int
    etag: str
    version: str | None

    @property
    def identity(self) -> str:
        """What the run records as the object's identity, in place of a content hash."""
        return f"s3:etag={self.etag};version={self.version or 'null'}"


def split(url: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URL; the key may be empty or a prefix ending in '/'."""
    parts = urlparse(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InputError(f"{url}: not an S3 URL", "write it as s3://BUCKET/KEY")
    return parts.netloc, parts.path.lstrip("/")


_client: Any = None
_profile: str | None = None


def use_profile(profile: str | None) -> None:
    """Take S3's credentials and region from the AWS profile `profile` from now on (None:
    AWS_PROFILE or the default chain), as DynamoDB's are: `--profile` names both."""
    global _client, _profile
    if profile != _profile:
        _client, _profile = None, profile


def client() -> Any:
    """One S3 client for the process: botocore's retries for the calls, ours for streams."""
    global _client
    if _client is None:
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=4)
        _client = aws_session(_profile).client("s3", config=config)
    return _client


def failure(url: str, e: Exception) -> InputError:
    """One line naming the object and what to do, for whatever S3 (or the way there) said."""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            bucket = split(url)[0]
            return InputError(f"{url}: there is no bucket {bucket!r}", "check the bucket name")
        if code in ("NoSuchKey", "404", "NotFound"):
            return InputError(f"{url}: no such object", "check the key (`aws s3 ls` lists them)")
        if code in (
            "AccessDenied",
            "403",
            "Forbidden",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        ):
            return InputError(
                f"{url}: access denied ({code})",
                "use credentials allowed s3:GetObject and s3:ListBucket on it (AWS_PROFILE, "
                "AWS_ACCESS_KEY_ID, ...)",
            )
        if code in ("PreconditionFailed", "412") or status == 412:
            return FileChangedError(
                f"{url}: the object was replaced while it was read",
                Text("import the new object as a new run, with ", Arg("new", True)),
            )
        return InputError(f"{url}: S3 refused ({code}: {err.get('Message', '')})")
    return InputError(
        f"{url}: cannot reach S3 ({e})",
        "check the network, the region and AWS_ENDPOINT_URL_S3 if S3 is local",
    )


class S3Object:
    """One object, named by its s3:// URL; HeadObject is asked once, on first need."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket, self.key = split(url)
        self._head: Head | None = None

    def head(self, fresh: bool = False) -> Head:
        if self._head is None or fresh:
            if not self.key or self.key.endswith("/"):
                raise InputError(f"{self.url}: names a folder, not an object")
            try:
                r = client().head_object(Bucket=self.bucket, Key=self.key)
            except (ClientError, BotoCoreError) as e:
                if isinstance(e, ClientError) and _code(e) in ("404", "NoSuchKey", "NotFound"):
                    self._bucket_exists()  # a missing bucket says 404 to HEAD as well
                raise failure(self.url, e) from None
            self._head = Head(int(r["ContentLength"]), r["ETag"], r.get("VersionId"))
        return self._head

    def _bucket_exists(self) -> None:
        try:
            client().head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if _code(e) in ("404", "NoSuchBucket", "NotFound"):
                raise failure(self.url, _as_code(e, "NoSuchBucket")) from None
        except BotoCoreError:
            pass

    def open(self, limit: int | None = None) -> _S3Raw:
        head = self.head()
        return _S3Raw(self, head, head.size if limit is None else min(limit, head.size))


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _as_code(e: ClientError, code: str) -> ClientError:
    response = dict(e.response)
    response["Error"] = {**response.get("Error", {}), "Code": code}
    return ClientError(response, e.operation_name)  # type: ignore[arg-type]


class _S3Raw(io.RawIOBase):
    """The object's bytes [0, size) as a seekable raw stream."""

    def __init__(self, obj: S3Object, head: Head, size: int) -> None:
        self._obj, self._head, self._size = obj, head, size
        self._pos = 0
        self._body: Any = None
        self._body_end = 0  # where the open GET's range ends
        self._gets = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            offset += self._size
        if offset != self._pos:
            self._drop()
            self._pos = max(0, offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        for attempt in range(_ATTEMPTS):
            try:
                if self._body is None:
                    self._get()
                data = self._body.read(min(len(view), self._body_end - self._pos))
                if not data:  # the range ended short: ask again from here
                    raise ConnectionError("the response ended early")
            except ClientError as e:
                self._drop()
                raise failure(self._obj.url, e) from None
            except (BotoCoreError, OSError, ConnectionError, ValueError) as e:
                self._drop()
                if attempt + 1 == _ATTEMPTS:
                    raise failure(self._obj.url, e) from None
                time.sleep(0.2 * 2**attempt)
                continue
            n = len(data)
            view[:n] = data
            self._pos += n
            if self._pos >= self._body_end:
                self._drop()
            return n
        return 0  # pragma: no cover - the loop returns or raises

    def _get(self) -> None:
        end = self._size if self._gets else min(self._size, self._pos + FIRST)
        self._gets += 1
        args: dict[str, Any] = {
            "Bucket": self._obj.bucket,
            "Key": self._obj.key,
            "Range": f"bytes={self._pos}-{end - 1}",
            "IfMatch": self._head.etag,
        }
        if self._head.version:
            args["VersionId"] = self._head.version
        self._body = client().get_object(**args)["Body"]
        self._body_end = end

    def _drop(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            with contextlib.suppress(Exception):  # a broken connection is let go anyway
                body.close()

    def close(self) -> None:
        self._drop()
        super().close()


def listing(url: str) -> dict[str, tuple[int, str]]:
    """Every object under the folder `url` (s3://BUCKET/PREFIX/), by its key relative to
    the prefix: (size, ETag)."""
    bucket, prefix = split(url)
    found: dict[str, tuple[int, str]] = {}
    try:
        for page in (
            client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        ):
            for o in page.get("Contents", []):
                found[o["Key"][len(prefix) :]] = (int(o["Size"]), str(o["ETag"]))
    except (ClientError, BotoCoreError) as e:
        raise failure(url, e) from None
    return found


def read_small(url: str) -> bytes:
    """The whole of a small object (a manifest)."""
    bucket, key = split(url)
    try:
        return client().get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
    except (ClientError, BotoCoreError) as e:
        raise failure(url, e) from None
