"""Durable orchestration: one workflow per campaign and per dispute."""

from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

WORKFLOWS: list[type] = [CampaignWorkflow, DisputeWorkflow]
