"""Durable orchestration: one workflow per campaign and per dispute, and one per delivery."""

from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow
from workflows.notifications import DeliverNotifications

WORKFLOWS: list[type] = [CampaignWorkflow, DisputeWorkflow, DeliverNotifications]
