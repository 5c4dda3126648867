"""Chooses the payment provider from the settings: Stripe when a key is set, else the sandbox."""

from __future__ import annotations

from flask import Flask, current_app

from app.payments.base import PaymentProvider


def init_provider(app: Flask) -> None:
    app.extensions["payment_provider"] = provider_from_config(app.config)


def provider_from_config(config) -> PaymentProvider:
    """The provider the settings name (a job given the settings builds its own: the staff
    pages' supporters import)."""
    if config["STRIPE_SECRET_KEY"]:
        if not config["STRIPE_WEBHOOK_SECRET"]:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET must be set with STRIPE_SECRET_KEY: "
                               "without it no Stripe event can be verified.")
        from app.payments.stripe import StripeProvider

        return StripeProvider(
            secret_key=config["STRIPE_SECRET_KEY"],
            webhook_secret=config["STRIPE_WEBHOOK_SECRET"],
            api_base=config["STRIPE_API_BASE"],
            tolerance=config["WEBHOOK_TOLERANCE_SECONDS"],
            timeout=config["STRIPE_TIMEOUT_SECONDS"],
            retries=config["STRIPE_MAX_RETRIES"],
        )
    from app.payments.sandbox import SandboxProvider

    return SandboxProvider(
        secret=config["SANDBOX_WEBHOOK_SECRET"],
        signing_key=config["SECRET_KEY"],
        tolerance=config["WEBHOOK_TOLERANCE_SECONDS"],
    )


def current_provider() -> PaymentProvider:
    return current_app.extensions["payment_provider"]


def provider_named(name: str) -> PaymentProvider | None:
    provider = current_provider()
    return provider if provider.name == name else None
