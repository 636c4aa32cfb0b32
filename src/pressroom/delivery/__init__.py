"""Delivery: freeze an issue into the ledger, send it through a provider, settle, report."""
