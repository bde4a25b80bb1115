"""The thin HTTP API: authenticates, validates, starts workflows and sends them Updates."""
