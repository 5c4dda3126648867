"""Payments: the provider interface, the providers, the ledger and the webhook pipeline."""
