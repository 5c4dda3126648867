"""Chooses the payment provider from the settings: Stripe when a key is set, else the sandbox."""

from __future__ import annotations

from flask import Flask, current_app

from app.payments.base import PaymentProvider


def init_provider(app: Flask) -> None:
    if app.config["STRIPE_SECRET_KEY"]:
        raise RuntimeError("The Stripe provider is not available yet; unset STRIPE_SECRET_KEY "
                           "to use the sandbox provider.")
    from app.payments.sandbox import SandboxProvider

    app.extensions["payment_provider"] = SandboxProvider(
        secret=app.config["SANDBOX_WEBHOOK_SECRET"],
        signing_key=app.config["SECRET_KEY"],
        tolerance=app.config["WEBHOOK_TOLERANCE_SECONDS"],
    )


def current_provider() -> PaymentProvider:
    return current_app.extensions["payment_provider"]


def provider_named(name: str) -> PaymentProvider | None:
    provider = current_provider()
    return provider if provider.name == name else None
