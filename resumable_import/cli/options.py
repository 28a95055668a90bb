"""The arguments and options more than one command takes, declared once so that their
names, metavars and help read the same in every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import MAX_WORKERS

LedgerOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        metavar="PATH",
        help="SQLite ledger of runs [default: $RIMPORT_LEDGER, else "
        "$XDG_STATE_HOME/rimport/ledger.sqlite]",
        show_default=False,
    ),
]


RunIdArg = Annotated[
    str, typer.Argument(metavar="RUN_ID", help="The run (any unique prefix of its id).")
]


FileArg = Annotated[
    str,
    typer.Argument(
        metavar="PATH",
        help="The dump (a JSON array, a wrapper object, JSON Lines), or a folder of dumps, "
        "or the folder of a DynamoDB export to S3; `-` for standard input (or any pipe), "
        "s3://BUCKET/KEY for an object in S3.",
    ),
]


TableOpt = Annotated[
    str | None,
    typer.Option(
        "--table",
        "-t",
        metavar="TABLE",
        help="DynamoDB table [default: from each file's name: messages-dump.json.gz -> "
        "messages; for an export, the exported table].",
        show_default=False,
    ),
]


PatternOpt = Annotated[
    str | None,
    typer.Option(
        metavar="GLOB",
        help="Which files of a folder [default: *.json, *.jsonl, *.ndjson, compressed or not].",
        show_default=False,
    ),
]


EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        "--endpoint-url",
        metavar="URL",
        help="DynamoDB endpoint URL, or `aws` for the region's AWS endpoint "
        "[default: $AWS_ENDPOINT_URL_DYNAMODB, $AWS_ENDPOINT_URL, http://localhost:8000]",
        show_default=False,
    ),
]


RegionOpt = Annotated[
    str | None,
    typer.Option("--region", metavar="REGION", help="AWS region [default: from the AWS config]"),
]


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="AWS profile for credentials and region, as in the aws cli [default: "
        "$AWS_PROFILE, else the default profile]; never recorded.",
        show_default=False,
    ),
]


# For a run already recorded: the endpoint and region it writes to are its own.
RunEndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        "--endpoint-url",
        metavar="URL",
        help="The run's endpoint, checked: a run continues where it started [default: the "
        "one it recorded].",
        show_default=False,
    ),
]


RunRegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="REGION",
        help="The run's region, checked likewise [default: the one it recorded].",
        show_default=False,
    ),
]


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="auto, json (array or wrapper), jsonl, ddb-json (DynamoDB's typed JSON, "
        "in any of those layouts), ddb-export (the lines of a DynamoDB export to S3), ion "
        "(the lines of an export in Ion format) or request-items (a file for "
        "batch-write-item --request-items: puts and deletes per table).",
    ),
]


ItemsPathOpt = Annotated[
    str | None,
    typer.Option(
        metavar="PATH",
        help="Where the items array sits in a wrapper object, as dotted keys "
        "(Items, data.records).",
    ),
]


KeyOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME:TYPE",
        help="Partition key as NAME:S|N|B, for a table that does not exist yet.",
    ),
]


SortKeyOpt = Annotated[
    str | None, typer.Option(metavar="NAME:TYPE", help="Sort key as NAME:S|N|B, with --key.")
]


ProgressOpt = Annotated[
    str,
    typer.Option(
        "--progress",
        metavar="KIND",
        help="How progress shows on stderr: bar, log (a line every few seconds), json (the "
        "same as JSON lines), none; auto: the bar on a terminal, else log (none with -q).",
    ),
]


# The settings `resume` may change, declared once for `start` and `resume`.
BATCH_SIZE = typer.Option(min=1, max=25, metavar="N", help="Items per BatchWriteItem.")


CONCURRENCY = typer.Option(min=1, max=64, metavar="N", help="Requests in flight at once.")


MAX_WCU = typer.Option(metavar="N", help="Cap on write capacity units per second.", min=1)


WORKERS = typer.Option(
    min=1, max=MAX_WORKERS, metavar="N", show_default=False,
    help="Writer processes, items routed to them by key [default: 1 for a local endpoint, "
    "else one per two cores beyond the first, at most 8].",
)  # fmt: skip


MAX_OUTAGE = typer.Option(
    metavar="SECONDS",
    min=0,
    help="How long to keep trying while the endpoint answers nothing before the run "
    "stops (resumably).",
)


TransformOpt = Annotated[
    str | None,
    typer.Option(
        metavar="FILE.py:FUNCTION",
        help="Change items on the way in: a Python function (FILE.py:FUNCTION or "
        "MODULE:FUNCTION) given each item, returning the item to write, a list of items, "
        "or None to skip it.",
        show_default=False,
    ),
]
