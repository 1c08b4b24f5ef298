"""The sandbox S3 serialises conditional writes: with 8 processes racing, exactly one
`If-None-Match: *` create and exactly one `If-Match` replace win each round (the lease and the
lockfile depend on it; moto alone lets two writers win)."""

from __future__ import annotations

import queue

from tests.conftest import SandboxProcess, forked

PROCESSES = 8
ROUNDS = 20
LATENCY = "0.02"  # seconds inside each write, after moto's precondition check


def _race(env: dict) -> list[tuple[str, int, int]]:
    context = forked()  # from a server that imported boto3 once, not a fresh interpreter per racer
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    racers = [context.Process(target=_racer, args=(env, barrier, results, i)) for i in range(PROCESSES)]
    for racer in racers:
        racer.start()
    wins, finished = [], 0
    while finished < PROCESSES:  # each racer ends with ("done", …); read before joining (a full pipe blocks)
        try:
            result = results.get(timeout=1)
        except queue.Empty:
            assert all(racer.exitcode in (None, 0) for racer in racers), [racer.exitcode for racer in racers]
            continue
        finished += result[0] == "done"
        wins += [result] if result[0] != "done" else []
    for racer in racers:
        racer.join(timeout=300)
        assert racer.exitcode == 0
    return wins


def _winners_per_round(wins, kind: str) -> list[int]:
    return [sum(1 for k, r, _ in wins if k == kind and r == round_) for round_ in range(ROUNDS)]


def _racer(env: dict, barrier, results, index: int) -> None:
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    for round_ in range(ROUNDS):
        barrier.wait(timeout=60)
        try:
            s3.put_object(Bucket="reconciler-state", Key=f"race/create-{round_}", Body=str(index).encode(), IfNoneMatch="*")
            results.put(("create", round_, index))
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"), e.response
        etag = s3.head_object(Bucket="reconciler-state", Key=f"race/create-{round_}")["ETag"]
        barrier.wait(timeout=60)
        try:
            s3.put_object(Bucket="reconciler-state", Key=f"race/create-{round_}", Body=f"{index}-2".encode(), IfMatch=etag)
            results.put(("replace", round_, index))
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"), e.response
    results.put(("done", -1, index))


def test_conditional_writes_have_exactly_one_winner_per_round(tmp_path):
    sandbox = SandboxProcess(tmp_path, "--s3-write-latency", LATENCY)
    try:
        wins = _race(sandbox.env)
    finally:
        sandbox.stop()
    for kind in ("create", "replace"):
        assert _winners_per_round(wins, kind) == [1] * ROUNDS, kind


def _unserialised_server(urls, stop) -> None:
    from reconciler.sandbox.s3 import S3Server

    server = S3Server(write_latency=float(LATENCY), serialise=False)
    server.start()
    import boto3

    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="a",
                 aws_secret_access_key="b").create_bucket(Bucket="reconciler-state")
    urls.put(server.url)
    stop.wait(300)
    server.stop()


def test_without_the_lock_moto_lets_several_writers_win():
    """The control: the same race against moto unserialised shows the bug the lock prevents."""
    context = forked()
    urls, stop = context.Queue(), context.Event()
    server = context.Process(target=_unserialised_server, args=(urls, stop))
    server.start()
    try:
        env = {"AWS_ENDPOINT_URL_S3": urls.get(timeout=60), "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
        wins = _race(env)
    finally:
        stop.set()
        server.join(timeout=30)
    assert max(_winners_per_round(wins, "create")) > 1
