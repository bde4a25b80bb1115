"""Durable orchestration: one workflow per campaign and per dispute, and one per delivery."""

from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow
from workflows.notifications import DeliverNotifications
from workflows.reconciliation import ReconciliationWorkflow

WORKFLOWS: list[type] = [
    CampaignWorkflow,
    DisputeWorkflow,
    DeliverNotifications,
    ReconciliationWorkflow,
]
