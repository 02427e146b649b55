"""The SAM template: it validates offline, and it agrees with the application.

Agreement means: every ``TINYSCRIBE_*`` variable is a real setting, table key schemas are the
ones the stores use, each function may touch only the tables and bucket prefixes its code
path needs, and the money tables survive deletion and can be restored.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from handler import cors
from handler.config import Settings
from handler.stores.schema import TABLES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent

API = "ApiFunction"
S3_FUNCTION = "TranscribeObjectFunction"
RECONCILE = "ReconcileFunction"
MONEY_TABLES = ("KeysTable", "WalletsTable", "LedgerTable")

# Table contract: logical id -> (partition key, sort key, TTL attribute). All keys are strings.
EXPECTED_TABLES: dict[str, tuple[str, str | None, str | None]] = {
    "KeysTable": ("key_id", None, None),
    "WalletsTable": ("wallet_id", None, None),
    "LedgerTable": ("wallet_id", "entry_id", None),
    "RateLimitsTable": ("key_id", None, "expires_at"),
    "JobsTable": ("job_id", None, "expires_at"),
    "IdempotencyTable": ("id", None, "expiration"),
    "IdempotencyKeysTable": ("id", None, "expires_at"),
}

READ = {"dynamodb:GetItem", "dynamodb:Query"}
WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}


# ------------------------------------------------------------------------------ helpers
@cache
def template() -> dict[str, Any]:
    """The template as cfn-lint reads it (short-form tags become ``{"Ref": ...}`` etc.)."""
    parsed, problems = decode(str(TEMPLATE))
    assert not problems, [str(problem) for problem in problems]
    document: dict[str, Any] = parsed  # cfn-lint is untyped
    return document


def resource(logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = template()["Resources"][logical_id]
    return found


def run_tool(*command: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a CLI from this virtualenv offline; the output is kept for the failure message."""
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_DISABLE_UPDATE_CHECK": "1",  # read by older CLIs; harmless otherwise
    }
    return subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def policy_statements(function: str) -> list[dict[str, Any]]:
    """Every statement of a function's inline policies (managed/template policies refused)."""
    statements: list[dict[str, Any]] = []
    for policy in resource(function)["Properties"]["Policies"]:
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"{function}: only inline policy documents are allowed, got {policy!r}"
        )
        statements.extend(policy["Statement"])
    for statement in statements:
        assert statement["Effect"] == "Allow"
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


INDEX_ARN = re.compile(r"^\$\{(\w+)\.Arn\}/index/([\w.-]+)$")


def table_of(arn: Any) -> str | None:
    """Logical id of a table referenced as ``!GetAtt Table.Arn`` (or ``Table/index/name`` for
    ``!Sub "${Table.Arn}/index/name"``); None for anything else."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        target, attribute = arn["Fn::GetAtt"]
        if attribute == "Arn" and resource(target)["Type"] == "AWS::DynamoDB::Table":
            return str(target)
    if isinstance(arn, dict) and isinstance(arn.get("Fn::Sub"), str):
        match = INDEX_ARN.match(arn["Fn::Sub"])
        if match and resource(match[1])["Type"] == "AWS::DynamoDB::Table":
            return f"{match[1]}/index/{match[2]}"
    return None


BUCKET_OBJECT_ARN = re.compile(r"^arn:\$\{AWS::Partition\}:s3:::tinyscribe-audio-\$\{StackUuid\}/")


def s3_prefix_of(arn: Any) -> str:
    """The key prefix of an object ARN in the audio bucket, e.g. ``uploads/``."""
    assert isinstance(arn, dict) and "Fn::Sub" in arn, f"unexpected S3 resource {arn!r}"
    text, variables = arn["Fn::Sub"]
    assert variables == {"StackUuid": stack_uuid()}, f"bucket name built differently: {arn!r}"
    assert BUCKET_OBJECT_ARN.match(text), f"not an object ARN in the audio bucket: {text}"
    prefix = BUCKET_OBJECT_ARN.sub("", text)
    assert prefix.endswith("/*") and "*" not in prefix[:-1], f"not a single prefix: {text}"
    return prefix[:-1]


def listed_prefixes(statement: dict[str, Any], arn: Any) -> list[str]:
    """Prefixes a ListBucket statement is limited to (it must be limited)."""
    text, variables = arn["Fn::Sub"]
    assert variables == {"StackUuid": stack_uuid()}
    assert text == "arn:${AWS::Partition}:s3:::tinyscribe-audio-${StackUuid}"
    allowed = as_list(statement["Condition"]["StringLike"]["s3:prefix"])
    assert all(p.endswith("/*") and "*" not in p[:-1] for p in allowed), allowed
    return [p[:-1] for p in allowed]


def stack_uuid() -> dict[str, Any]:
    """The expression every bucket reference uses: the UUID part of AWS::StackId."""
    return {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}


def access(function: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """What a function may do: {table logical id: actions}, {bucket prefix: actions}."""
    tables: dict[str, set[str]] = {}
    prefixes: dict[str, set[str]] = {}
    for statement in policy_statements(function):
        actions = set(as_list(statement["Action"]))
        services = {action.split(":")[0] for action in actions}
        assert len(services) == 1, f"{function}: mixed services in one statement {actions}"
        for arn in as_list(statement["Resource"]):
            if services == {"dynamodb"}:
                table = table_of(arn)
                assert table, f"{function}: DynamoDB resource is not a table of this stack: {arn}"
                tables.setdefault(table, set()).update(actions)
            elif actions == {"s3:ListBucket"}:
                for prefix in listed_prefixes(statement, arn):
                    prefixes.setdefault(prefix, set()).update(actions)
            elif services == {"s3"}:
                prefixes.setdefault(s3_prefix_of(arn), set()).update(actions)
            else:
                pytest.fail(f"{function}: unexpected service in {actions}")
    return tables, prefixes


def environment(function: str | None = None) -> dict[str, Any]:
    """Globals' environment, or one function's own additions."""
    variables: dict[str, Any]
    if function is None:
        variables = template()["Globals"]["Function"]["Environment"]["Variables"]
        return variables
    props = resource(function)["Properties"]
    variables = props.get("Environment", {}).get("Variables", {})
    return variables


def tinyscribe_variables() -> dict[str, Any]:
    variables = {**environment(), **environment(API), **environment(S3_FUNCTION)}
    return {name: value for name, value in variables.items() if name.startswith("TINYSCRIBE_")}


def setting_name(variable: str) -> str:
    return variable.removeprefix("TINYSCRIBE_").lower()


def indexes(logical_id: str) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    """Global secondary indexes: name -> (partition key, sort key, projected attributes)."""
    found = {}
    for index in resource(logical_id)["Properties"].get("GlobalSecondaryIndexes", []):
        keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        projection = index["Projection"]
        assert projection["ProjectionType"] in ("INCLUDE", "KEYS_ONLY"), "project only what is read"
        attributes = tuple(projection.get("NonKeyAttributes", ()))
        found[index["IndexName"]] = (keys["HASH"], keys.get("RANGE"), attributes)
    return found


def key_schema(logical_id: str) -> tuple[str, str | None, str | None]:
    """(partition key, sort key, TTL attribute) of a table, checking every key is a string."""
    props = resource(logical_id)["Properties"]
    types = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
    keys = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
    index_keys = {key for p, s, _ in indexes(logical_id).values() for key in (p, s) if key}
    assert set(types) == set(keys.values()) | index_keys, f"{logical_id}: definitions != keys"
    assert set(types.values()) == {"S"}, f"{logical_id}: key types {types}"
    ttl = props.get("TimeToLiveSpecification")
    if ttl is not None:
        assert ttl["Enabled"] is True
    return keys["HASH"], keys.get("RANGE"), ttl["AttributeName"] if ttl else None


# ------------------------------------------------------------------------------ tools
@pytest.mark.parametrize("mode", [["--lint"], []], ids=["lint", "translator"])
def test_sam_validate_passes(mode: list[str]) -> None:
    result = run_tool(BIN / "sam", "validate", *mode, "--template", TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_reports_nothing() -> None:
    result = run_tool(BIN / "cfn-lint", TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# ------------------------------------------------------------------------------ IAM
def test_api_function_touches_only_its_tables_and_prefixes() -> None:
    tables, prefixes = access(API)
    # Exactly the calls the request path makes (transactions need each item's action).
    assert tables == {
        "KeysTable": {"dynamodb:GetItem"},
        "RateLimitsTable": {"dynamodb:UpdateItem"},
        "WalletsTable": {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        },
        "LedgerTable": {
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
        "JobsTable": {"dynamodb:GetItem", "dynamodb:PutItem"},
        "IdempotencyKeysTable": {
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
    }
    # It signs PUT URLs for job uploads and GET URLs for job results, and checks whether an
    # upload or a result exists (HEAD needs GetObject; ListBucket makes a miss a 404).
    assert prefixes == {
        "uploads/": {"s3:PutObject", "s3:GetObject", "s3:ListBucket"},
        "results/": {"s3:GetObject", "s3:ListBucket"},
    }


def test_s3_function_touches_only_its_tables_and_prefixes() -> None:
    tables, prefixes = access(S3_FUNCTION)
    assert tables == {
        "WalletsTable": {"dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"},
        "LedgerTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "JobsTable": {"dynamodb:UpdateItem"},
        # Powertools deletes the record when the wrapped call fails, so a retry runs again.
        "IdempotencyTable": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
    }
    assert prefixes == {
        "input/": {"s3:GetObject"},
        "uploads/": {"s3:GetObject"},
        "output/": {"s3:PutObject"},
        "results/": {"s3:PutObject"},
    }


def test_nobody_may_delete_money() -> None:
    for function in (API, S3_FUNCTION, RECONCILE):
        tables, _ = access(function)
        for table in MONEY_TABLES:
            deletes = {a for a in tables.get(table, set()) if "Delete" in a or "*" in a}
            assert not deletes, f"{function} may {deletes} on {table}"


def test_s3_events_match_the_prefixes_the_app_reads() -> None:
    settings = Settings.model_fields
    events = resource(S3_FUNCTION)["Properties"]["Events"]
    prefixes = set()
    for event in events.values():
        assert event["Type"] == "S3"
        assert event["Properties"]["Bucket"] == {"Ref": "AudioBucket"}
        (rule,) = event["Properties"]["Filter"]["S3Key"]["Rules"]
        assert rule["Name"] == "prefix"
        prefixes.add(rule["Value"])
    assert prefixes == {settings["input_prefix"].default, settings["uploads_prefix"].default}
    # The function writes where it is not triggered: no recursive invocations.
    written = {p for p, actions in access(S3_FUNCTION)[1].items() if "s3:PutObject" in actions}
    assert not written & prefixes


def test_bucket_is_named_without_referring_to_the_bucket() -> None:
    """The same deterministic name everywhere; a !Ref would make a cycle (cfn-lint E3004)."""
    expected = {"Fn::Sub": ["tinyscribe-audio-${StackUuid}", {"StackUuid": stack_uuid()}]}
    assert resource("AudioBucket")["Properties"]["BucketName"] == expected
    assert environment()["TINYSCRIBE_BUCKET"] == expected


# ------------------------------------------------------------------------------ settings
def test_every_tinyscribe_variable_is_a_setting() -> None:
    variables = tinyscribe_variables()
    unknown = {name for name in variables if setting_name(name) not in Settings.model_fields}
    assert not unknown, f"not fields of handler.config.Settings: {sorted(unknown)}"
    assert {f"TINYSCRIBE_{spec.setting.upper()}" for spec in TABLES} <= set(variables)
    assert "TINYSCRIBE_BUCKET" in variables


def test_dockerfile_variables_are_settings() -> None:
    names = re.findall(r"\b(TINYSCRIBE_[A-Z0-9_]+)=", DOCKERFILE.read_text(encoding="utf-8"))
    assert "TINYSCRIBE_MODEL_DIR" in names
    assert all(setting_name(name) in Settings.model_fields for name in names), names


def test_parameter_defaults_match_setting_defaults() -> None:
    parameters = template()["Parameters"]
    fields = Settings.model_fields
    for variable, value in tinyscribe_variables().items():
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
            default = parameters[value["Ref"]]["Default"]
            assert float(default) == float(fields[setting_name(variable)].default), variable


# ------------------------------------------------------------------------------ tables
def test_table_key_schemas_match_the_contract() -> None:
    tables = {
        name for name, res in template()["Resources"].items() if res["Type"].endswith("Table")
    }
    assert tables == set(EXPECTED_TABLES), "tables must be AWS::DynamoDB::Table, as listed"
    for logical_id, expected in EXPECTED_TABLES.items():
        assert resource(logical_id)["Type"] == "AWS::DynamoDB::Table"
        assert resource(logical_id)["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert key_schema(logical_id) == expected, logical_id


def test_table_key_schemas_match_the_stores() -> None:
    """handler.stores.schema (what `tinyscribe init` creates locally) and AWS agree, indexes
    included."""
    variables = tinyscribe_variables()
    for spec in TABLES:
        logical_id = variables[f"TINYSCRIBE_{spec.setting.upper()}"]["Ref"]
        expected = (spec.partition_key, spec.sort_key, spec.ttl_attribute)
        assert key_schema(logical_id) == expected, spec
        assert indexes(logical_id) == {
            index.name: (index.partition_key, index.sort_key, index.attributes)
            for index in spec.indexes
        }, spec


@pytest.mark.parametrize("logical_id", MONEY_TABLES)
def test_money_tables_are_retained_and_recoverable(logical_id: str) -> None:
    table = resource(logical_id)
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert "TableName" not in props, "fixed names block replacement and second stacks"


def test_reconcile_function_reads_open_reservations_through_the_index_only() -> None:
    tables, prefixes = access(RECONCILE)
    assert tables == {
        "LedgerTable/index/open-reservations": {"dynamodb:Query"},
        "LedgerTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "WalletsTable": {"dynamodb:UpdateItem"},
        "JobsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "IdempotencyKeysTable": {"dynamodb:GetItem", "dynamodb:DeleteItem"},
    }
    assert not any("Scan" in action for actions in tables.values() for action in actions)
    assert prefixes == {}
    (schedule,) = resource(RECONCILE)["Properties"]["Events"].values()
    assert schedule["Type"] == "Schedule"


def test_http_api_cors_is_the_apps_policy() -> None:
    """API Gateway answers browsers with the lists the app uses (handler/cors.py): the
    official SDKs' request headers pass the preflight, and pages can read the rate-limit,
    retry, request-id and billing headers."""
    config = resource("HttpApi")["Properties"]["CorsConfiguration"]
    assert config["AllowOrigins"] == {"Ref": "CorsOrigins"}
    assert [h.lower() for h in config["AllowHeaders"]] == list(cors.ALLOW_HEADERS)
    assert [h.lower() for h in config["ExposeHeaders"]] == list(cors.EXPOSE_HEADERS)
    assert set(config["AllowMethods"]) == {*cors.ALLOW_METHODS, "OPTIONS"}
    assert config["MaxAge"] == cors.MAX_AGE_SECONDS
