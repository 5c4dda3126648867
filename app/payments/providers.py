"""Chooses the payment provider from the settings: Stripe when a key is set, else the sandbox."""

from __future__ import annotations

from flask import Flask, current_app

from app.payments.base import PaymentProvider


def init_provider(app: Flask) -> None:
    if app.config["STRIPE_SECRET_KEY"]:
        if not app.config["STRIPE_WEBHOOK_SECRET"]:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET must be set with STRIPE_SECRET_KEY: "
                               "without it no Stripe event can be verified.")
        from app.payments.stripe import StripeProvider

        app.extensions["payment_provider"] = StripeProvider(
            secret_key=app.config["STRIPE_SECRET_KEY"],
            webhook_secret=app.config["STRIPE_WEBHOOK_SECRET"],
            api_base=app.config["STRIPE_API_BASE"],
            tolerance=app.config["WEBHOOK_TOLERANCE_SECONDS"],
            timeout=app.config["STRIPE_TIMEOUT_SECONDS"],
            retries=app.config["STRIPE_MAX_RETRIES"],
        )
        return
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
