"""Durable orchestration: one workflow per campaign and per dispute."""

from workflows.campaign import CampaignWorkflow

WORKFLOWS: list[type] = [CampaignWorkflow]
