"""Notifications: outbox rows in the change's transaction, signed webhook deliveries with retries.

The receiving end is a real HTTP server in a thread that verifies the signature, fails the first attempt and
accepts the second.
"""

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from core.egress import ENDPOINT_UNREACHABLE
from promotions.actions import PromotionEvent
from promotions.models import OutboxEvent, WebhookDelivery
from promotions.services.outbox import outbox_dispatch, outbox_publish
from promotions.services.promotion_requests import promotion_request_create
from promotions.services.webhooks import webhook_create, webhook_delete, webhook_retry_delay
from promotions.tasks import deliver_webhook
from tests.conftest import run_committed
from tests.promotions.promotion_factories import environment, push_version, run_gates


class Receiver:
    """A local webhook endpoint: records every request, answers 500 to the first `failures` of them."""

    def __init__(self, failures: int = 1):
        self.failures = failures
        self.secret = ""
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    receiver.received.append(
                        {
                            "event": self.headers["X-Contractor-Event"],
                            "signature_ok": hmac.compare_digest(
                                expected, self.headers["X-Contractor-Signature"]
                            ),
                            "body": json.loads(body),
                        }
                    )
                    failing = len(receiver.received) <= receiver.failures
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"try again" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/contractor"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_change_writes_its_notification_in_the_same_transaction(team):
    version = push_version(team.author)
    run_gates(team.author, version)
    with pytest.raises(RuntimeError), transaction.atomic():
        promotion_request_create(
            actor=team.author, version=version, environment=environment("staging"), justification="x"
        )
        assert OutboxEvent.objects.filter(event="promotion.requested").count() == 1
        raise RuntimeError("the change fails after the event was written")
    assert not OutboxEvent.objects.filter(event="promotion.requested").exists()
    promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="x"
    )
    assert list(OutboxEvent.objects.order_by("id").values_list("event", flat=True)) == [
        "gate.finished",
        "promotion.requested",
        "promotion.promoted",
    ]
    promoted = OutboxEvent.objects.get(event="promotion.promoted").payload
    assert (promoted["bundle"], promoted["version"], promoted["environment"]) == (
        "claims-triage",
        "1.2.0",
        "staging",
    )


def test_dispatch_targets_the_active_webhooks_subscribed_to_the_event(team):
    everything, _ = webhook_create(actor=team.admin, url="http://127.0.0.1:9/all")
    gates_only, _ = webhook_create(
        actor=team.admin, url="http://127.0.0.1:9/gates", events=[PromotionEvent.GATE_FINISHED]
    )
    gone, _ = webhook_create(actor=team.admin, url="http://127.0.0.1:9/gone")
    webhook_delete(actor=team.admin, webhook=gone)
    with transaction.atomic():
        requested = outbox_publish("promotion.requested", {"request": 1})
        finished = outbox_publish(PromotionEvent.GATE_FINISHED, {"run": 1})
    assert outbox_dispatch(event_id=requested.pk) == [everything.pk]
    assert outbox_dispatch(event_id=finished.pk) == [everything.pk, gates_only.pk]
    assert outbox_dispatch(event_id=finished.pk) == []  # dispatched once
    requested.refresh_from_db()
    assert requested.dispatched_at is not None


@override_settings(
    CONTRACTOR={**settings.CONTRACTOR, "WEBHOOK_RETRY_BASE_SECONDS": 0, "WEBHOOK_MAX_ATTEMPTS": 4}
)
def test_a_delivery_is_signed_retried_after_a_failure_and_every_attempt_recorded(team):
    with Receiver(failures=1) as receiver:
        webhook, secret = webhook_create(actor=team.admin, url=receiver.url)
        receiver.secret = secret
        with transaction.atomic():
            event = outbox_publish(PromotionEvent.GATE_FINISHED, {"run": 7, "status": "passed"})
        result = deliver_webhook.apply(kwargs={"event_id": event.pk, "webhook_id": webhook.pk}).get()
    assert result["succeeded"] is True
    assert result["attempt"] == 2
    assert [(row["event"], row["signature_ok"]) for row in receiver.received] == [
        (PromotionEvent.GATE_FINISHED, True),
        (PromotionEvent.GATE_FINISHED, True),
    ]
    assert receiver.received[0]["body"]["data"] == {"run": 7, "status": "passed"}
    assert receiver.received[0]["body"]["tenant"] == "alpha"
    attempts = list(WebhookDelivery.objects.filter(webhook=webhook).order_by("attempt"))
    assert [(row.attempt, row.succeeded, row.status_code) for row in attempts] == [
        (1, False, 500),
        (2, True, 200),
    ]
    assert attempts[0].error.startswith("HTTP 500")
    assert all(row.duration_ms >= 0 for row in attempts)


@override_settings(
    CONTRACTOR={**settings.CONTRACTOR, "WEBHOOK_RETRY_BASE_SECONDS": 0, "WEBHOOK_MAX_ATTEMPTS": 3}
)
def test_deliveries_stop_after_the_maximum_attempts(team):
    with Receiver(failures=10) as receiver:
        webhook, receiver.secret = webhook_create(actor=team.admin, url=receiver.url)
        with transaction.atomic():
            event = outbox_publish(PromotionEvent.GATE_FINISHED, {"run": 8})
        result = deliver_webhook.apply(kwargs={"event_id": event.pk, "webhook_id": webhook.pk}).get()
    assert result == {"delivery": result["delivery"], "attempt": 3, "succeeded": False}
    assert len(receiver.received) == 3
    assert WebhookDelivery.objects.filter(webhook=webhook, succeeded=False).count() == 3


def test_an_unreachable_webhook_records_the_connection_error(team):
    webhook, _ = webhook_create(actor=team.admin, url="http://127.0.0.1:9/closed")
    with transaction.atomic():
        event = outbox_publish(PromotionEvent.GATE_FINISHED, {"run": 9})
    from promotions.services.webhooks import webhook_deliver

    delivery = webhook_deliver(event_id=event.pk, webhook_id=webhook.pk, attempt=1)
    assert delivery.succeeded is False
    assert delivery.status_code is None
    assert delivery.error == ENDPOINT_UNREACHABLE


def test_the_backoff_doubles_per_attempt():
    with override_settings(CONTRACTOR={**settings.CONTRACTOR, "WEBHOOK_RETRY_BASE_SECONDS": 5}):
        assert [webhook_retry_delay(attempt) for attempt in (1, 2, 3, 4)] == [5, 10, 20, 40]


# With the real worker -------------------------------------------------------------------------------------


def committed_webhook(admin_name: str, url: str, marker: str):
    from django.contrib.auth import get_user_model

    from tenancy.models import Tenant
    from tenancy.selectors import current_tenant
    from tenancy.services import membership_set

    user = get_user_model().objects.create_user(username=admin_name, password="pw-for-tests-1")
    tenant = Tenant.objects.get(schema_name=current_tenant().schema_name)
    membership_set(actor=None, tenant=tenant, user=user, roles=["admin"])
    webhook, secret = webhook_create(
        actor=user, url=url, events=[PromotionEvent.GATE_FINISHED], description=marker
    )
    return webhook.pk, secret


def publish_committed(marker: str) -> int:
    with transaction.atomic():
        return outbox_publish(PromotionEvent.GATE_FINISHED, {"marker": marker}).pk


def deliveries_of(webhook_id: int) -> list[tuple]:
    return list(
        WebhookDelivery.objects.filter(webhook_id=webhook_id)
        .order_by("attempt")
        .values_list("attempt", "succeeded", "status_code")
    )


def stop_webhook(webhook_id: int, admin_name: str) -> None:
    from django.contrib.auth import get_user_model

    from promotions.models import Webhook

    webhook_delete(
        actor=get_user_model().objects.get(username=admin_name), webhook=Webhook.objects.get(pk=webhook_id)
    )


@pytest.mark.worker
def test_the_worker_delivers_a_committed_event_and_retries_with_backoff(
    celery_worker_process, committed_tenant, db
):
    marker = uuid.uuid4().hex
    admin_name = f"hook-admin-{marker[:8]}"
    with Receiver(failures=1) as receiver:
        webhook_id, receiver.secret = run_committed(
            committed_webhook, admin_name, receiver.url, marker, tenant=committed_tenant
        )
        try:
            event_id = run_committed(publish_committed, marker, tenant=committed_tenant)
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                if len(run_committed(deliveries_of, webhook_id, tenant=committed_tenant)) >= 2:
                    break
                time.sleep(0.2)
        finally:
            run_committed(stop_webhook, webhook_id, admin_name, tenant=committed_tenant)
    mine = [row for row in receiver.received if row["body"]["data"].get("marker") == marker]
    assert [row["signature_ok"] for row in mine] == [True, True]
    assert all(row["body"]["id"] == event_id for row in mine)
    assert run_committed(deliveries_of, webhook_id, tenant=committed_tenant) == [
        (1, False, 500),
        (2, True, 200),
    ]
