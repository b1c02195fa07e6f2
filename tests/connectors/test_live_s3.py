"""S3 connection test against moto's S3 server on a loopback port, with IAM checks on.

moto accepts any key unless ``INITIAL_NO_AUTH_ACTION_COUNT`` is finite; the set-up creates an
IAM user with an S3 policy, its access key and a bucket while checks are off, then turns them
on (count 0) so every request the test makes is verified: unknown key, wrong secret and a
missing bucket are real refusals by the server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target
from tests.connectors.live_servers import Moto
from tests.connectors.live_servers import moto_s3 as running_moto_s3

from flowcred.connectors.base import TestTarget
from flowcred.connectors.s3 import S3Test

BUCKET = "flowcred-connlive"


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[Moto]:
    with running_moto_s3(BUCKET) as running:
        yield running


def s3(endpoint: str, key_id: str, secret: str, **config: object) -> TestTarget:
    base: dict[str, object] = {
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key_id": key_id,
        "bucket": BUCKET,
    }
    base.update(config)
    return target("aws_s3", base, secret_access_key=secret)


def test_a_valid_key_may_use_its_bucket(moto_s3: Moto) -> None:
    message = S3Test().check(s3(moto_s3.url, moto_s3.key_id, moto_s3.secret), 5.0)
    assert message == (
        f"access key {moto_s3.key_id} may use bucket '{BUCKET}' at 127.0.0.1 (HeadBucket ok)"
    )


def test_without_a_bucket_the_key_lists_buckets(moto_s3: Moto) -> None:
    tgt = s3(moto_s3.url, moto_s3.key_id, moto_s3.secret, bucket=None)
    assert S3Test().check(tgt, 5.0).endswith("(ListBuckets ok)")


def test_a_wrong_secret_fails_authentication(moto_s3: Moto) -> None:
    wrong = canary("s3")
    message = failure(S3Test(), s3(moto_s3.url, moto_s3.key_id, wrong))
    assert message == (
        "authentication failed: the secret access key does not match (SignatureDoesNotMatch)"
    )
    assert wrong not in message and moto_s3.secret not in message


def test_an_unknown_key_fails_authentication(moto_s3: Moto) -> None:
    message = failure(S3Test(), s3(moto_s3.url, "AKIAFLOWCREDUNKNOWN0", moto_s3.secret))
    assert message == "authentication failed: the access key ID is not known (InvalidAccessKeyId)"


def test_a_missing_bucket_is_named(moto_s3: Moto) -> None:
    tgt = s3(moto_s3.url, moto_s3.key_id, moto_s3.secret, bucket="fc-no-such-bucket")
    assert failure(S3Test(), tgt) == "bucket 'fc-no-such-bucket' does not exist"


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(moto_s3: Moto) -> None:
    planted = canary("s3")
    assert_network_failures(
        S3Test(), lambda host, port: s3(f"http://{host}:{port}", "AKIAX", planted), planted
    )
