"""Where to write, whether we may, and what the table's key is.

The safety rule lives here: rimport writes only to this machine unless the user says
`--allow-remote`, so a stray AWS_ENDPOINT_URL or profile cannot load a dump into a
production table by accident.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from .errors import ServiceError, TableError, UsageError, hint_for
from .items import KeySpec

DEFAULT_ENDPOINT = "http://localhost:8000"
AWS = "aws"  # `--endpoint aws`: the region's public DynamoDB endpoint


def resolve_endpoint(flag: str | None) -> str:
    return (
        flag
        or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        or os.environ.get("AWS_ENDPOINT_URL")
        or DEFAULT_ENDPOINT
    )


def is_loopback(endpoint: str) -> bool:
    if endpoint == AWS:
        return False
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"{endpoint!r} is not an endpoint URL",
            "give one like http://localhost:8000, or `aws` for the region's AWS endpoint",
        )
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, allow_remote: bool) -> None:
    """Refuse, before anything is written, an endpoint that is not on this machine."""
    if not is_loopback(endpoint) and not allow_remote:
        where = "AWS itself" if endpoint == AWS else endpoint
        raise UsageError(
            f"refusing to write to {where}: only local endpoints (localhost, 127.0.0.0/8, ::1)"
            " are allowed by default",
            "pass --allow-remote if you really mean to write to that table",
        )


@dataclass(frozen=True)
class Connection:
    client: Any  # botocore DynamoDB client
    region: str
    credentials: Any  # botocore credentials, for the fast write path to sign with


def connect(endpoint: str, region: str | None, *, pool_size: int = 10) -> Connection:
    """A DynamoDB client for `endpoint`, with the region and credentials it uses.

    Against a local endpoint, missing credentials and region get harmless defaults so that
    DynamoDB Local works out of the box. botocore's own retries are off: the writer retries,
    with knowledge of which items are left.
    """
    local = is_loopback(endpoint)
    if local:
        # Looking for instance credentials on a laptop only waits for a timeout.
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session()
    region = region or session.region_name or ("us-east-1" if local else None)
    if not region:
        raise UsageError(
            "no AWS region set", "pass --region, or set AWS_REGION / AWS_DEFAULT_REGION"
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
    )
    client = session.client(
        "dynamodb",
        region_name=region,
        endpoint_url=None if endpoint == AWS else endpoint,
        config=config,
        **dummy,
    )
    return Connection(client, region, credentials)


@dataclass(frozen=True)
class TableInfo:
    name: str
    keys: tuple[KeySpec, ...]  # partition key first

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


def describe_table(client: Any, name: str) -> TableInfo | None:
    """The table's key schema, or None if there is no such table."""
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
    return TableInfo(
        name, tuple(KeySpec(k["AttributeName"], types[k["AttributeName"]]) for k in schema)
    )


def table_keys(
    table: str, endpoint: str | None = None, region: str | None = None
) -> tuple[KeySpec, ...]:
    """The key of an existing table, for checking a dump against it without writing.

    Only reads the table's description, so any endpoint is fine without --allow-remote.
    """
    endpoint = resolve_endpoint(endpoint)
    info = describe_table(connect(endpoint, region).client, table)
    if info is None:
        raise TableError(
            f"table {table!r} does not exist at {endpoint}",
            "pass the key it will have: --key NAME:S|N|B [--sort-key NAME:S|N|B]",
        )
    return info.keys


def ensure_table(
    client: Any, name: str, keys: tuple[KeySpec, ...] | None, endpoint: str
) -> TableInfo:
    """The table to write to; created on demand (on-demand capacity) when `keys` are given."""
    info = describe_table(client, name)
    if info is not None:
        if keys and info.keys != keys:
            have = ", ".join(f"{k.name}:{k.type}" for k in info.keys)
            raise TableError(
                f"table {name!r} already exists with key {have}, not the one given",
                "drop --create-table/--key, or choose another table name",
            )
        return info
    if not keys:
        raise TableError(
            f"table {name!r} does not exist at {endpoint}",
            "create it, or pass --create-table --key NAME:S [--sort-key NAME:S]",
        )
    try:
        client.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": k.name, "KeyType": kt}
                for k, kt in zip(keys, ("HASH", "RANGE"), strict=False)
            ],
            AttributeDefinitions=[{"AttributeName": k.name, "AttributeType": k.type} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        for _ in range(600):
            if client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE":
                break
            time.sleep(0.5)
    except (ClientError, BotoCoreError) as e:
        raise _service_error(e, name) from None
    return TableInfo(name, keys)


def _service_error(e: Exception, table: str) -> ServiceError:
    code = ""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code", "")
        what = f"{code}: {err.get('Message')}"
    else:
        what = str(e)
    return ServiceError(f"cannot reach table {table!r}: {what}", hint_for(code))
