"""The DynamoDB client for an endpoint, and the table: its key, its identity, its creation.

Which endpoints may be written to is `endpoint.py`'s to say; everything here takes an
endpoint already parsed and judged there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound, SSLError

from . import endpoint
from .endpoint import AWS, Endpoint
from .errors import (
    Arg,
    ServiceError,
    TableError,
    TableMissingError,
    Text,
    UsageError,
    hint_for,
)
from .keys import KeySpec
from .outcomes import CA_HINT


def resolve_endpoint(flag: str | None) -> Endpoint:
    """The endpoint to use, parsed: `--endpoint`, else the environment, else DynamoDB Local."""
    return endpoint.parse(
        flag
        or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        or os.environ.get("AWS_ENDPOINT_URL")
        or endpoint.DEFAULT
    )


@dataclass(frozen=True)
class Connection:
    client: Any  # botocore DynamoDB client
    region: str
    credentials: Any  # botocore credentials, for the fast write path to sign with


def connect(
    where: Endpoint | str, region: str | None, *, pool_size: int = 10, profile: str | None = None
) -> Connection:
    """A DynamoDB client for the endpoint, with the region and credentials it uses.

    `profile` names the AWS profile to take credentials and region from, as the aws cli's
    `--profile` does (else AWS_PROFILE, else the default one).

    Against a local endpoint, missing credentials and region get harmless defaults so that
    DynamoDB Local works out of the box. botocore's own retries are off: the writer retries,
    with knowledge of which items are left.
    """
    if isinstance(where, str):
        where = endpoint.parse(where)
    local = where.loopback
    if local:
        # Looking for instance credentials on a laptop only waits for a timeout.
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    session = aws_session(profile)
    region = region or session.region_name or ("us-east-1" if local else None)
    if not region:
        raise UsageError(
            "no AWS region set",
            "pass region=NAME, or set AWS_REGION / AWS_DEFAULT_REGION",
            param="region=NAME",
        )
    credentials = session.get_credentials()
    dummy: dict[str, str] = {}
    if credentials is None:
        if not local:
            raise UsageError(
                "no AWS credentials found",
                "configure them as for the AWS CLI (aws configure, AWS_PROFILE, ...)",
            )
        credentials = Credentials("rimport", "rimport")
        dummy = {"aws_access_key_id": "rimport", "aws_secret_access_key": "rimport"}
    config = Config(
        retries={"total_max_attempts": 1},
        parameter_validation=False,
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=pool_size,
        # `aws` means AWS itself: not an endpoint_url from the environment or the profile,
        # which the safety rule did not see.
        ignore_configured_endpoint_urls=True,
    )
    client = session.client(
        "dynamodb",
        region_name=region,
        endpoint_url=None if where.url == AWS else where.url,
        config=config,
        **dummy,
    )
    return Connection(client, region, credentials)


def aws_session(profile: str | None) -> boto3.session.Session:
    """A boto3 session on `profile` (or AWS_PROFILE); one that names no configured profile
    is a usage error, not botocore's traceback."""
    try:
        return boto3.session.Session(profile_name=profile)
    except ProfileNotFound:
        name = profile or os.environ.get("AWS_PROFILE", "")
        where = "given" if profile else "named by AWS_PROFILE"
        raise UsageError(
            f"the AWS profile {name!r} {where} is not configured (in ~/.aws/config or "
            "~/.aws/credentials)",
            Text(
                Arg("profile", "NAME"),
                " takes one of those `aws configure list-profiles` lists (`aws configure` "
                "sets one up)",
            ),
        ) from None


@dataclass(frozen=True)
class TableInfo:
    name: str
    keys: tuple[KeySpec, ...]  # partition key first
    identity: str  # tells this table from one deleted and created again under its name
    status: str = "ACTIVE"
    size_bytes: int | None = None  # DynamoDB's figure, updated every six hours or so
    item_count: int | None = None

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


def identity_of(table: dict[str, Any]) -> str:
    """What tells a table from another created later under the same name: DynamoDB's
    `TableId` where the endpoint gives one, else its ARN and creation time (DynamoDB Local
    gives no TableId; its creation times have milliseconds)."""
    if table.get("TableId"):
        return f"id:{table['TableId']}"
    created = table.get("CreationDateTime")
    stamp = created.timestamp() if hasattr(created, "timestamp") else created
    return f"{table.get('TableArn', table.get('TableName'))}@{stamp}"


def describe_table(client: Any, name: str) -> TableInfo | None:
    """The table's key schema and identity, or None if there is no such table."""
    try:
        table = client.describe_table(TableName=name)["Table"]
    except ClientError as e:
        error = e.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            return None
        if error.get("Code") == "ValidationException":
            raise TableError(f"table {name!r}: {error.get('Message')}") from None
        raise _service_error(e, name) from None
    except BotoCoreError as e:
        raise _service_error(e, name) from None
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    schema = sorted(table["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    keys = tuple(KeySpec(k["AttributeName"], types[k["AttributeName"]]) for k in schema)
    return TableInfo(name, keys, identity_of(table), table.get("TableStatus", "ACTIVE"),
                     table.get("TableSizeBytes"), table.get("ItemCount"))  # fmt: skip


def table_keys(
    table: str, where: str | None = None, region: str | None = None, profile: str | None = None
) -> tuple[KeySpec, ...]:
    """The key of an existing table, for checking a dump against it without writing.

    Only reads the table's description, so any endpoint is fine without --allow-remote.
    """
    at = resolve_endpoint(where)
    info = describe_table(connect(at, region, profile=profile).client, table)
    if info is None:
        raise TableMissingError(table, str(at), param="keys")
    return info.keys


_ACTIVE_WAIT = 300.0  # seconds a table may take to become ACTIVE


def ensure_table(
    client: Any,
    name: str,
    keys: tuple[KeySpec, ...] | None,
    where: Endpoint,
    *,
    before_create: Callable[[tuple[KeySpec, ...]], None] | None = None,
) -> TableInfo:
    """The table to write to, ACTIVE; created on demand (on-demand capacity) when `keys`
    are given. Another process creating the same table at the same moment is waited for.

    `before_create` may refuse the keys (by raising) before a table is created with them:
    a table made with the wrong key type stays behind, empty, for the user to delete.
    """
    info = describe_table(client, name)
    if info is None:
        if not keys:
            raise TableMissingError(name, str(where))
        if before_create:
            before_create(keys)
        _create(client, name, keys)
        info = describe_table(client, name)
    deadline = time.monotonic() + _ACTIVE_WAIT
    while info is not None and info.status != "ACTIVE" and time.monotonic() < deadline:
        time.sleep(0.2)
        info = describe_table(client, name)
    if info is None or info.status != "ACTIVE":
        state = "vanished" if info is None else f"stayed {info.status}"
        raise ServiceError(
            f"table {name!r} at {where} {state} while rimport waited for it to become ACTIVE",
            "check the table in the console or with `aws dynamodb describe-table`, then retry",
        )
    if keys and info.keys != keys:
        have = ", ".join(f"{k.name}:{k.type}" for k in info.keys)
        raise TableError(
            f"table {name!r} already exists with key {have}, not the one given",
            "leave out create_keys (they are for a table to create), or choose another table name",
            param="create_keys",
        )
    return info


def create_as(client: Any, request: dict[str, Any], where: Endpoint) -> TableInfo:
    """The table `request` (CreateTable's arguments: a backup's schema) names, created so
    if missing, ACTIVE. An existing table is taken as it is: its key is checked where the
    items are."""
    if describe_table(client, request["TableName"]) is None:
        _create(client, request["TableName"], (), request)
    return ensure_table(client, request["TableName"], None, where)


def _create(
    client: Any, name: str, keys: tuple[KeySpec, ...], request: dict[str, Any] | None = None
) -> None:
    try:
        client.create_table(
            **request
            or dict(
                TableName=name,
                KeySchema=[
                    {"AttributeName": k.name, "KeyType": kt}
                    for k, kt in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[
                    {"AttributeName": k.name, "AttributeType": k.type} for k in keys
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise _service_error(e, name) from None
        # Someone else created it a moment ago: wait for it like for our own.
    except BotoCoreError as e:
        raise _service_error(e, name) from None


def _service_error(e: Exception, table: str) -> ServiceError:
    code = ""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code", "")
        what = f"{code}: {err.get('Message')}"
    else:
        what = str(e)
    hint = CA_HINT if isinstance(e, SSLError) else hint_for(code)  # the real cause: the CA
    return ServiceError(f"cannot reach table {table!r}: {what}", hint)
