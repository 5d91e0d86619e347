"""S3 storage: audio objects in a bucket on AWS or any S3-compatible server, over boto3.

boto3 is imported by ``s3_client`` only, when s3 storage or the S3 manifest store is selected.

- **Idempotent.** ``put`` asks for the object first (one HEAD); an object whose ``sha256``
  metadata equals the audio's is not sent again (in ``public-read`` mode it is given the ACL,
  one PutObjectAcl, as it may have been stored in another mode). New audio goes up with
  ``Content-Type: audio/mpeg``, a long ``Cache-Control`` (keys are named by content, so an
  object never changes), its sha256 in the metadata, and in parts above 16 MiB.
- **URLs are explicit** (``url_mode``): ``public`` is a stable URL for a bucket readable by
  policy, or on ``S3_PUBLIC_BASE_URL`` (a CDN); ``public-read`` also sends the ``public-read``
  ACL, and a bucket that forbids ACLs is an error, never a silent private upload;
  ``presign`` links by a signed URL that expires. Keys are URL-encoded. ``url_for`` is pure,
  so a dry run names the exact URL a real run records.
- Errors become ``StorageError`` naming the bucket and key; credentials never appear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from esl_build.errors import ConfigInvalid, StorageError
from esl_build.files import atomic_path

if TYPE_CHECKING:
    from esl_build.settings import S3Settings

CACHE_CONTROL = "public, max-age=31536000, immutable"
MULTIPART_THRESHOLD = 16 * 1024 * 1024
_RETRYABLE = {"500", "502", "503", "504", "RequestTimeout", "SlowDown", "InternalError",
              "ServiceUnavailable", "ThrottlingException"}


def s3_client(settings: S3Settings) -> Any:
    """A boto3 S3 client for these settings: the credentials the settings were resolved with
    (a key pair, else a profile, else boto3's standard chain), the region, an optional
    S3-compatible endpoint, addressing style and checksum modes."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": settings.addressing_style},
                    signature_version="s3v4",
                    # botocore's "legacy" retries (5xx, throttling, dropped connections,
                    # RequestTimeout), not "standard": standard also keeps a retry quota
                    # per client that a steady fault rate drains, after which nothing is
                    # retried at all (seen at 20 % faults: whole builds failing twice).
                    retries={"mode": "legacy", "max_attempts": 5},
                    request_checksum_calculation=settings.request_checksum,
                    response_checksum_validation=settings.response_checksum,
                    connect_timeout=min(10, settings.timeout),
                    read_timeout=settings.timeout)
    if settings.access_key_id and settings.secret_access_key:
        token = settings.session_token
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key.reveal(),
            aws_session_token=token.reveal() if token else None)
    else:
        session = boto3.session.Session(profile_name=settings.profile)
    return session.client("s3", region_name=settings.region,
                          endpoint_url=settings.endpoint_url, config=config)


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


T = TypeVar("T")
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})  # the codes S3 answers for no object


def _unless_missing(call: Callable[[], T], doing: str) -> T | None:
    """``call()``'s answer, or None when S3 says there is no such object; any other failure
    is a ``StorageError`` saying what was being done."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        if error_code(exc) in MISSING:
            return None
        raise storage_error(exc, doing) from None
    except BotoCoreError as exc:
        raise storage_error(exc, doing) from None


def storage_error(exc: Exception, doing: str) -> StorageError:
    """A botocore error as our ``StorageError`` (code and request id, no credentials)."""
    response = getattr(exc, "response", None) or {}
    code = error_code(exc)
    request_id = response.get("ResponseMetadata", {}).get("RequestId") or None
    if code:
        message = response.get("Error", {}).get("Message") or code
        text = f"{doing}: {code}: {message}"
    else:  # connection errors, timeouts: botocore's text names the endpoint, not the keys
        text = f"{doing}: {type(exc).__name__}: {exc}"
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}:
        text += " (check the AWS credentials: AWS_ACCESS_KEY_ID/AWS_PROFILE)"
    if "NoCredentials" in type(exc).__name__:
        text = (f"{doing}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
    retryable = code in _RETRYABLE or not code
    return StorageError(text, retryable=retryable, request_id=request_id)


class S3Storage:
    """Audio objects in one bucket. ``client`` is a boto3 S3 client (see ``s3_client``)."""

    name = "s3"
    remote = True

    def __init__(self, client: Any, *, bucket: str, prefix: str = "audio",
                 key_template: str = "{prefix}/{lesson}/{sha16}.mp3",
                 endpoint_url: str | None = None, region: str = "us-east-1",
                 addressing_style: str = "auto", public_base_url: str | None = None,
                 public_read: bool = False, presign_seconds: int | None = None,
                 multipart_threshold: int = MULTIPART_THRESHOLD):
        if public_read and presign_seconds:
            raise ConfigInvalid("S3_PUBLIC_READ (--public-read) and S3_PRESIGN_SECONDS "
                                "(--presign) exclude each other: link by a public URL or by "
                                "a presigned one")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.key_template = key_template
        self.endpoint_url = endpoint_url
        self.region = region
        self.addressing_style = addressing_style
        self.public_base_url = public_base_url
        self.public_read = public_read
        self.presign_seconds = presign_seconds
        self.multipart_threshold = multipart_threshold
        self.url_mode = ("presign" if presign_seconds else
                         "public-read" if public_read else "public")
        # What shapes the recorded outputs (key, URL): part of the upload's fingerprint.
        self.settings: dict[str, Any] = {
            "bucket": bucket, "keys": self._template(), "url": self.url_mode,
            "base": self.base_url, **({"expires": presign_seconds} if presign_seconds else {})}

    @classmethod
    def from_settings(cls, settings: S3Settings, client: Any | None = None) -> S3Storage:
        """The storage ``settings`` describe (``S3_BUCKET`` must be set)."""
        if not settings.bucket:
            raise ConfigInvalid("s3 storage needs S3_BUCKET (the bucket that receives audio)")
        return cls(client or s3_client(settings), bucket=settings.bucket,
                   prefix=settings.prefix, key_template=settings.key_template,
                   endpoint_url=settings.endpoint_url, region=settings.region,
                   addressing_style=settings.addressing_style,
                   public_base_url=settings.public_base_url, public_read=settings.public_read,
                   presign_seconds=settings.presign_seconds)

    # -- keys and URLs (pure) ----------------------------------------------------------------
    def _template(self) -> str:
        return self.key_template.replace("{prefix}", self.prefix).lstrip("/")

    def key_for(self, lesson_id: str, sha256: str) -> str:
        """The object key of a lesson's audio: the key template filled in."""
        try:
            key = self._template().format(lesson=lesson_id, sha256=sha256, sha16=sha256[:16])
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigInvalid(f"S3_KEY_TEMPLATE {self.key_template!r} is not a valid "
                                "template: use {prefix}, {lesson}, {sha256} and {sha16}"
                                ) from exc
        return "/".join(part for part in key.split("/") if part)

    @property
    def base_url(self) -> str:
        """Where public URLs start: ``S3_PUBLIC_BASE_URL``, else the bucket's own address."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            if self.addressing_style == "virtual":
                return f"{parts.scheme}://{self.bucket}.{parts.netloc}"
            return f"{self.endpoint_url.rstrip('/')}/{self.bucket}"
        if self.addressing_style == "path":
            return f"https://s3.{self.region}.amazonaws.com/{self.bucket}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com"

    def url_for(self, key: str) -> str:
        """The URL a page links for ``key`` (no request is sent: a dry run gets the same)."""
        if self.url_mode == "presign":
            return str(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.presign_seconds))
        return f"{self.base_url}/{quote(key, safe='/~')}"

    # -- Storage protocol ----------------------------------------------------------------
    def put(self, file: Path, key: str, *, sha256: str, content_type: str) -> dict[str, Any]:
        """Upload ``file`` to ``key`` unless an object with the same sha256 is there already.

        Returns ``bucket``, ``key``, ``etag``, ``sha256``, ``url`` and ``sent`` (False when
        the object was already stored)."""
        path = Path(file)
        if not path.is_file():
            raise StorageError(f"cannot store {key}: source file {file} does not exist")
        actual = _sha256(path)
        if actual != sha256:
            raise StorageError(f"cannot store {key}: {file} has sha256 {actual}, "
                               f"expected {sha256}")
        where = f"s3://{self.bucket}/{key}"
        stored = self._head(key, where)
        sent = stored is None or stored.get("Metadata", {}).get("sha256") != sha256
        if sent:
            etag = self._upload(path, key, sha256, content_type, where)
        else:
            etag = stored["ETag"] if stored else ""
            if self.public_read:  # stored before in another mode: it must be readable now
                self._grant_public_read(key, where)
        return {"bucket": self.bucket, "key": key, "etag": etag, "sha256": sha256,
                "url": self.url_for(key), "sent": sent}

    def _head(self, key: str, where: str) -> dict[str, Any] | None:
        return _unless_missing(lambda: dict(self.client.head_object(Bucket=self.bucket, Key=key)),
                               f"cannot look up {where}")

    def _upload(self, path: Path, key: str, sha256: str, content_type: str,
                where: str) -> str:
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, Any] = {"ContentType": content_type, "CacheControl": CACHE_CONTROL,
                                 "Metadata": {"sha256": sha256}}
        if self.public_read:
            extra["ACL"] = "public-read"
        try:
            if path.stat().st_size < self.multipart_threshold:
                with open(path, "rb") as body:
                    answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                    **extra)
                return str(answer["ETag"])
            transfer = TransferConfig(multipart_threshold=self.multipart_threshold,
                                      multipart_chunksize=max(self.multipart_threshold // 2,
                                                              5 * 1024 * 1024),
                                      use_threads=False)
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra,
                                    Config=transfer)
            return str(self.client.head_object(Bucket=self.bucket, Key=key)["ETag"])
        except (ClientError, S3UploadFailedError) as exc:
            cause = exc if isinstance(exc, ClientError) else (exc.__context__ or exc)
            if self.public_read and error_code(cause) == "AccessControlListNotSupported":
                raise _acls_forbidden(f"cannot upload {where}", "Nothing was uploaded "
                                      "privately") from None
            raise storage_error(cause, f"cannot upload {where}") from None
        except BotoCoreError as exc:
            raise storage_error(exc, f"cannot upload {where}") from None

    def _grant_public_read(self, key: str, where: str) -> None:
        """Give an object stored earlier the public-read ACL (one PutObjectAcl)."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.client.put_object_acl(Bucket=self.bucket, Key=key, ACL="public-read")
        except ClientError as exc:
            if error_code(exc) == "AccessControlListNotSupported":
                raise _acls_forbidden(f"cannot make {where} public-read",
                                      "The object was left as it was") from None
            raise storage_error(exc, f"cannot make {where} public-read") from None
        except BotoCoreError as exc:
            raise storage_error(exc, f"cannot make {where} public-read") from None

    def fetch(self, outputs: dict[str, Any], dest: Path) -> None:
        """Download the object of an earlier ``put`` to ``dest``, atomically."""
        from botocore.exceptions import BotoCoreError, ClientError

        if outputs.get("bucket") != self.bucket:
            raise StorageError(f"object {outputs.get('key')} was stored in bucket "
                               f"{outputs.get('bucket')!r}, this storage is {self.bucket!r}")
        key = outputs["key"]
        try:
            with atomic_path(Path(dest)) as tmp:
                self.client.download_file(self.bucket, key, str(tmp))
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"cannot download s3://{self.bucket}/{key}") from None

    def read_object(self, key: str) -> bytes | None:
        """The bytes stored at ``key``, or None when there is no such object."""
        found = self.read_object_version(key)
        return None if found is None else found[0]

    def write_object(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store ``data`` at ``key`` (one PUT; S3 replaces objects atomically)."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"cannot write s3://{self.bucket}/{key}") from None

    def read_object_version(self, key: str) -> tuple[bytes, str] | None:
        """The bytes stored at ``key`` and their ETag, or None when there is no such object."""
        def get() -> tuple[bytes, str]:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(answer["Body"].read()), str(answer["ETag"])

        return _unless_missing(get, f"cannot read s3://{self.bucket}/{key}")

    def write_object_if(self, key: str, data: bytes, *, content_type: str,
                        version: str | None) -> str | None:
        """A conditional PUT: ``If-None-Match: *`` (no version) or ``If-Match: <ETag>``."""
        from botocore.exceptions import BotoCoreError, ClientError
        condition = {"IfMatch": version} if version else {"IfNoneMatch": "*"}
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                            ContentType=content_type, **condition)
        except ClientError as exc:
            if error_code(exc) in {"412", "PreconditionFailed", "409",
                                   "ConditionalRequestConflict"}:
                return None
            raise storage_error(exc, f"cannot write s3://{self.bucket}/{key}") from None
        except BotoCoreError as exc:
            raise storage_error(exc, f"cannot write s3://{self.bucket}/{key}") from None
        return str(answer["ETag"])

    def durable(self, outputs: dict[str, Any]) -> bool:
        """Trusts the record (no network): it names an object in this bucket."""
        return outputs.get("bucket") == self.bucket and bool(outputs.get("key"))

    def watched(self, outputs: dict[str, Any]) -> tuple[str, ...]:
        """No local files: the record is trusted."""
        return ()


def _acls_forbidden(doing: str, outcome: str) -> StorageError:
    return StorageError(
        f"{doing} with the public-read ACL: the bucket does not allow ACLs "
        f"(AccessControlListNotSupported: its object ownership is BucketOwnerEnforced). "
        f"{outcome}. Make the bucket readable by a bucket policy (or a CDN, "
        "S3_PUBLIC_BASE_URL) and drop --public-read / S3_PUBLIC_READ, or link by "
        "--presign / S3_PRESIGN_SECONDS")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["CACHE_CONTROL", "S3Storage", "error_code", "s3_client", "storage_error"]
