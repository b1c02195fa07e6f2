"""Item 20 of the hardening issue: the forms a secret may take, blank secrets and past expiries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

import flowcred
from flowcred.broker import Broker
from flowcred.catalog import default_catalog
from flowcred.cli.main import app

SECRET_FIELDS = [
    (type_name, spec.name)
    for type_name in default_catalog().names()
    for spec in default_catalog().get(type_name).secret_fields
]


def test_one_required_secret_field_accepts_the_plain_string() -> None:
    aws = default_catalog().get("aws_s3")
    assert aws.parse_secret_value("wJalrXUtnFEMI/K7MDENG") == {
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG"
    }
    # The JSON object form still works, and is the only way to give the optional session token.
    assert aws.parse_secret_value('{"secret_access_key": "s", "session_token": "t"}') == {
        "secret_access_key": "s",
        "session_token": "t",
    }
    # Two required secret fields: only the object form.
    twilio = default_catalog().get("twilio")
    with pytest.raises(flowcred.InvalidCredential):
        twilio.parse_secret_value("plain")


def test_aws_s3_is_created_from_a_plain_secret_value(broker: Broker) -> None:
    cred = broker.credentials.create(
        name="S3",
        type="aws_s3",
        config={"access_key_id": "AKIAEXAMPLE"},
        secret_value="wJalrXUtnFEMI/K7MDENG",
    )
    assert broker.provider().resolve(cred.id).reveal_fields()["secret_access_key"] == (
        "wJalrXUtnFEMI/K7MDENG"
    )


@pytest.mark.parametrize(("type_name", "field"), SECRET_FIELDS)
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_secret_values_are_refused_for_every_secret_field(
    type_name: str, field: str, blank: str
) -> None:
    spec = default_catalog().get(type_name).field(field)
    if spec.kind == "json":
        pytest.skip("a json secret is an object, never a string")
    value, problem = spec.normalize(blank)
    assert value is None and problem is not None
    assert "blank" in problem or "empty" in problem


def test_blank_secret_value_is_refused_at_create(broker: Broker) -> None:
    with pytest.raises(flowcred.InvalidCredential) as caught:
        broker.credentials.create(name="Blank", type="api_key", secret_value="   ")
    assert [p.field for p in caught.value.problems] == ["api_key"]
    with pytest.raises(flowcred.InvalidCredential):
        broker.credentials.create(
            name="Blank", type="aws_s3", config={"access_key_id": "AKIA"}, secret_value=" "
        )


def test_expiry_in_the_past_is_refused_at_create_and_update(broker: Broker) -> None:
    past = broker.clock.now() - timedelta(minutes=1)
    with pytest.raises(flowcred.InvalidCredential) as caught:
        broker.credentials.create(
            name="Old", type="api_key", secret={"api_key": "sk_old_123456"}, expires_at=past
        )
    assert [p.field for p in caught.value.problems] == ["expires_at"]
    assert broker.credentials.list() == []
    cred = broker.credentials.create(
        name="New",
        type="api_key",
        secret={"api_key": "sk_new_123456"},
        expires_at=broker.clock.now() + timedelta(days=1),
    )
    with pytest.raises(flowcred.InvalidCredential) as caught:
        broker.credentials.update(cred.id, expires_at=past)
    assert [p.field for p in caught.value.problems] == ["expires_at"]
    assert broker.credentials.get(cred.id).expires_at is not None
    assert broker.credentials.update(cred.id, expires_at=None).expires_at is None


def test_types_command_says_which_form_the_secret_takes() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["types", "aws_s3"]).stdout
    assert "plain string" in out and "secret_access_key" in out and "JSON object" in out
    out = runner.invoke(app, ["types", "twilio"]).stdout
    assert "JSON object" in out and "accountSid" in out and "authToken" in out
    out = runner.invoke(app, ["types", "slack"]).stdout
    assert "plain string" in out
    out = runner.invoke(app, ["types", "sftp"]).stdout
    assert "at least one of password, private_key" in out
    out = runner.invoke(app, ["types", "no_auth"]).stdout
    assert "no secret" in out
