#!/usr/bin/env python3
"""Drives every webhooks call of the official UbiOps Python client against a hookrelay API.

Calls: webhooks_create, webhooks_get, webhooks_list (labels, object_type and event filters),
webhooks_update (rename; a protected header sent with value None keeps its value),
webhooks_delete, webhook_tests_create and webhook_tests_get, plus the errors the client must
surface (401, 404, 409, 400).

Environment:
  HOOKRELAY_URL      base URL of the API including /v2.1, e.g. http://127.0.0.1:8080/v2.1
  HOOKRELAY_TOKEN    the API token (sent as "Token <token>", as UbiOps does)
  HOOKRELAY_PROJECT  project to use (default "ubiops-client"); should hold no webhooks yet
  HOOKRELAY_EXPECT_TEST_STATUS  if set, the status webhook_tests_get must report
                                (e.g. "pending" when no worker runs)

Exits 0 when every check passes, 1 with the failing check otherwise. Needs `pip install ubiops`.
"""

import datetime
import os
import sys
import traceback

try:
    import ubiops
except ImportError:
    print("the official UbiOps client is not installed: pip install ubiops", file=sys.stderr)
    sys.exit(1)

BASE = os.environ.get("HOOKRELAY_URL", "http://127.0.0.1:8080/v2.1")
TOKEN = os.environ.get("HOOKRELAY_TOKEN", "")
PROJECT = os.environ.get("HOOKRELAY_PROJECT", "ubiops-client")
EXPECT_TEST_STATUS = os.environ.get("HOOKRELAY_EXPECT_TEST_STATUS")

CHECKS = 0


def check(condition, what):
    """Counts a check; raises with `what` when it fails."""
    global CHECKS
    if not condition:
        raise AssertionError(what)
    CHECKS += 1


def expect_status(status, call, *args, **kwargs):
    """Runs a client call that must fail with HTTP `status`; returns the exception."""
    try:
        call(*args, **kwargs)
    except ubiops.ApiException as e:
        check(e.status == status, f"{call.__name__}: expected HTTP {status}, got {e.status}: {e.body}")
        check(e.get_body_message(), f"{call.__name__}: the error body names no error: {e.body}")
        return e
    raise AssertionError(f"{call.__name__}: expected HTTP {status}, but the call succeeded")


def client(token):
    configuration = ubiops.Configuration()
    configuration.host = BASE
    configuration.api_key["Authorization"] = f"Token {token}"
    api_client = ubiops.ApiClient(configuration)
    return api_client, ubiops.CoreApi(api_client)


def names(webhooks):
    return sorted(w.name for w in webhooks)


def run(core):
    # webhooks_create: the request example of the UbiOps documentation, with labels.
    created = core.webhooks_create(
        PROJECT,
        ubiops.WebhookCreate(
            name="webhook-1",
            url="https://callback-url-webhook-1.com",
            headers=[
                ubiops.WebhookHeader(key="Authorization", value="Token 123", protected=True),
                ubiops.WebhookHeader(key="X-Team", value="a", protected=False),
            ],
            object_type="deployment",
            object_name="deployment-1",
            version="v1",
            event="deployment_request_finished",
            labels={"event-type": "request-finished"},
        ),
    )
    check(isinstance(created, ubiops.WebhookDetail), f"create returned {type(created)}")
    check(created.name == "webhook-1", f"name {created.name}")
    check(created.id and len(created.id) == 36, f"id {created.id}")
    check(created.url == "https://callback-url-webhook-1.com", f"url {created.url}")
    check(created.object_type == "deployment" and created.object_name == "deployment-1", "object")
    check(created.version == "v1", f"version {created.version}")
    check(created.event == "deployment_request_finished", f"event {created.event}")
    check(created.description == "", f"description default {created.description!r}")
    check(created.labels == {"event-type": "request-finished"}, f"labels {created.labels}")
    check(created.timeout == 10, f"timeout default {created.timeout}")
    check(created.enabled is True, "enabled default")
    check(created.retry is False, "retry default")
    check(created.include_result is False, "include_result default")
    check(isinstance(created.creation_date, datetime.datetime), f"creation_date {created.creation_date!r}")
    check(isinstance(created.last_updated, datetime.datetime), f"last_updated {created.last_updated!r}")
    check(len(created.headers) == 2, f"headers {created.headers}")
    auth, team = created.headers
    check(auth.key == "Authorization" and auth.protected is True, f"header {auth}")
    check(auth.value is None, f"a protected header value is shown: {auth.value!r}")
    check(team.value == "a" and team.protected is False, f"header {team}")

    second = core.webhooks_create(
        PROJECT,
        ubiops.WebhookCreate(
            name="webhook-2",
            url="https://callback-url-webook-2.com",
            object_type="pipeline",
            object_name="pipeline-2",
            event="pipeline_request_failed",
            labels={"event-type": "request-failed"},
            timeout=15,
            retry=True,
            include_result=True,
            description="the second one",
        ),
    )
    check(second.timeout == 15 and second.retry is True and second.include_result is True, "second webhook")
    check(second.version is None, f"version {second.version!r}")

    # Errors the client surfaces as ApiException with the status.
    expect_status(
        409,
        core.webhooks_create,
        PROJECT,
        ubiops.WebhookCreate(
            name="webhook-1",
            url="https://example.org/x",
            object_type="deployment",
            object_name="d",
            event="e",
        ),
    )
    e = expect_status(
        400,
        core.webhooks_create,
        PROJECT,
        ubiops.WebhookCreate(
            name="webhook-3",
            url="https://example.org/x",
            object_type="deployment",
            object_name="d",
            event="e",
            timeout=31,
        ),
    )
    check("timeout" in e.get_body_message(), f"the 400 does not name timeout: {e.body}")

    # webhooks_get
    got = core.webhooks_get(PROJECT, "webhook-1")
    check(got.id == created.id and got.name == "webhook-1", "get returns the webhook")
    check(got.headers[0].value is None and got.headers[1].value == "a", f"get headers {got.headers}")
    check(got.labels == created.labels and got.timeout == 10, "get fields")
    expect_status(404, core.webhooks_get, PROJECT, "no-such-webhook")

    # webhooks_list and its filters
    check(names(core.webhooks_list(PROJECT)) == ["webhook-1", "webhook-2"], "list all")
    check(
        names(core.webhooks_list(PROJECT, labels="event-type:request-finished")) == ["webhook-1"],
        "list by labels",
    )
    check(names(core.webhooks_list(PROJECT, object_type="pipeline")) == ["webhook-2"], "list by object_type")
    check(
        names(core.webhooks_list(PROJECT, event="deployment_request_finished")) == ["webhook-1"],
        "list by event",
    )
    check(
        names(core.webhooks_list(PROJECT, labels="event-type:request-failed", object_type="pipeline"))
        == ["webhook-2"],
        "list by labels and object_type",
    )
    check(
        core.webhooks_list(PROJECT, labels="event-type:request-failed", object_type="deployment") == [],
        "list with filters that match nothing",
    )

    # webhooks_update: rename, change fields; the protected header sent with value None keeps
    # its stored value (the caller checks the stored value in Redis).
    updated = core.webhooks_update(
        PROJECT,
        "webhook-1",
        ubiops.WebhookUpdate(
            name="webhook-renamed",
            headers=[
                ubiops.WebhookHeader(key="Authorization", value=None, protected=True),
                ubiops.WebhookHeader(key="X-Team", value="b", protected=False),
            ],
            description="renamed",
            timeout=20,
            labels={"event-type": "request-finished", "team": "b"},
        ),
    )
    check(updated.name == "webhook-renamed", f"renamed to {updated.name}")
    check(updated.id == created.id, "the id survives a rename")
    check(updated.description == "renamed" and updated.timeout == 20, "updated fields")
    check(updated.headers[0].value is None and updated.headers[1].value == "b", f"updated headers {updated.headers}")
    check(updated.labels == {"event-type": "request-finished", "team": "b"}, f"labels {updated.labels}")
    expect_status(404, core.webhooks_get, PROJECT, "webhook-1")
    check(core.webhooks_get(PROJECT, "webhook-renamed").description == "renamed", "get after rename")

    # Read, change one thing, send the headers back as read: still keeps the protected value.
    current = core.webhooks_get(PROJECT, "webhook-renamed")
    again = core.webhooks_update(
        PROJECT,
        "webhook-renamed",
        ubiops.WebhookUpdate(headers=current.headers, enabled=False),
    )
    check(again.enabled is False, "disabled")
    check([h.key for h in again.headers] == ["Authorization", "X-Team"], f"headers {again.headers}")

    expect_status(409, core.webhooks_update, PROJECT, "webhook-renamed", ubiops.WebhookUpdate(name="webhook-2"))
    expect_status(404, core.webhooks_update, PROJECT, "no-such-webhook", ubiops.WebhookUpdate(description="x"))

    # webhook_tests_create and webhook_tests_get: the documentation's example.
    test = core.webhook_tests_create(
        PROJECT,
        ubiops.WebhookTestCreate(
            url="https://callback-url-webhook-1.com",
            object_type="deployment",
            object_name="deployment-1",
            event="deployment_request_finished",
        ),
    )
    check(isinstance(test, ubiops.WebhookTestDetail), f"test returned {type(test)}")
    check(test.id and test.status == "pending" and test.error_message is None, f"new test {test}")
    fetched = core.webhook_tests_get(PROJECT, test.id)
    check(fetched.id == test.id, "test id")
    check(fetched.status in ("pending", "completed", "failed"), f"test status {fetched.status}")
    if EXPECT_TEST_STATUS:
        check(fetched.status == EXPECT_TEST_STATUS, f"test status {fetched.status}, expected {EXPECT_TEST_STATUS}")
    if fetched.status != "failed":
        check(fetched.error_message is None, f"error_message {fetched.error_message!r}")
    expect_status(404, core.webhook_tests_get, PROJECT, "00000000-0000-4000-8000-000000000000")

    # webhooks_delete
    check(core.webhooks_delete(PROJECT, "webhook-2") is None, "delete returns nothing")
    expect_status(404, core.webhooks_get, PROJECT, "webhook-2")
    expect_status(404, core.webhooks_delete, PROJECT, "webhook-2")
    check(names(core.webhooks_list(PROJECT)) == ["webhook-renamed"], "list after delete")


def main():
    api_client, core = client(TOKEN)
    bad_client, bad_core = client(TOKEN + "-wrong")
    try:
        run(core)
        expect_status(401, bad_core.webhooks_list, PROJECT)
    except Exception:  # noqa: BLE001 - every failure ends the run with its traceback
        traceback.print_exc()
        print(f"ubiops client: FAILED after {CHECKS} checks", file=sys.stderr)
        return 1
    finally:
        api_client.close()
        bad_client.close()
    print(f"ubiops client: {CHECKS} checks passed against {BASE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
