"""All I/O of the workflows: payments, notifications, read models."""

from __future__ import annotations

from collections.abc import Callable

from activities.metrics import MetricsActivities
from activities.notifications import NotificationActivities
from activities.payments import PaymentActivities
from activities.reconciliation import ReconciliationActivities
from activities.records import RecordActivities


def build_activities(settings, sessionmaker, rail=None) -> list[Callable]:
    """Every activity, bound to its dependencies (`rail`: tests put a stand-in there)."""
    payments = PaymentActivities(settings, sessionmaker, rail)
    records = RecordActivities(settings, sessionmaker)
    notifications = NotificationActivities(settings, sessionmaker)
    reconciliation = ReconciliationActivities(settings, sessionmaker, payments.rail)
    metrics = MetricsActivities(settings, sessionmaker)
    return [
        payments.fund_campaign,
        payments.release_funds,
        payments.refund_funds,
        payments.settle_funding,
        payments.find_funding,
        payments.record_chargeback,
        records.record_campaign_change,
        records.record_dispute_change,
        notifications.deliver_notifications,
        reconciliation.reconcile,
        metrics.observe_post,
        metrics.takedown_evidence,
    ]
