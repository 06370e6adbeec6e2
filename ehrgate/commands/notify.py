"""`ehrgate notify`: webhooks, the patient's e-mail address, and dead letters (admins)."""

from __future__ import annotations

import click

from ehrgate.commands._session import session, split_list, table
from ehrgate.commands._shared import emit, json_option


@click.group()
def notify() -> None:
    """Notifications: where the gateway tells you of events (webhooks, e-mail)."""


@notify.command(name="add-webhook")
@click.argument("url")
@click.option(
    "--kinds",
    metavar="K1,K2",
    help="Event kinds to receive (access_request, break_glass, denied_read, grant_expiring, "
    "erasure_done, export_done); default all.",
)
@json_option
@click.pass_context
def add_webhook(ctx: click.Context, url: str, kinds: str | None, as_json: bool) -> None:
    """Register an https URL that receives your events, signed by the gateway."""
    chosen = split_list(kinds, "--kinds") if kinds is not None else None
    hook = session(ctx).client().add_webhook(url, kinds=chosen)
    emit(as_json, hook.to_json(), f"webhook {hook.endpoint_id} -> {hook.url}")


@notify.command(name="webhooks")
@json_option
@click.pass_context
def list_webhooks(ctx: click.Context, as_json: bool) -> None:
    """List your webhooks."""
    found = session(ctx).client().webhooks()
    emit(
        as_json,
        {"webhooks": [hook.to_json() for hook in found]},
        lambda: table(
            ("webhook", "url", "kinds"),
            [(h.endpoint_id, h.url, ",".join(h.kinds)) for h in found],
        ),
    )


@notify.command(name="remove-webhook")
@click.argument("endpoint_id")
@click.pass_context
def remove_webhook(ctx: click.Context, endpoint_id: str) -> None:
    """Remove one of your webhooks."""
    session(ctx).client().remove_webhook(endpoint_id)
    click.echo(f"removed webhook {endpoint_id}")


@notify.command(name="email")
@click.argument("address", required=False)
@click.option("--remove", is_flag=True, help="Forget the address instead.")
@click.pass_context
def email(ctx: click.Context, address: str | None, remove: bool) -> None:
    """Give the patient's e-mail address (kept encrypted by the gateway), or --remove it."""
    client = session(ctx).client()
    if remove:
        client.remove_email()
        click.echo("e-mail address removed")
        return
    if address is None:
        raise click.UsageError("give an ADDRESS, or --remove")
    click.echo(f"e-mails go to {client.set_email(address)}")


@notify.command(name="key")
@click.pass_context
def key(ctx: click.Context) -> None:
    """Print the gateway's key that webhook signatures verify with (base64)."""
    click.echo(session(ctx).client().webhook_key())


@notify.command(name="dead-letters")
@json_option
@click.pass_context
def dead_letters(ctx: click.Context, as_json: bool) -> None:
    """List deliveries that failed every attempt (admins)."""
    found = session(ctx).client().dead_letters()
    emit(
        as_json,
        {"deliveries": [d.to_json() for d in found]},
        lambda: table(
            ("delivery", "event", "kind", "channel", "attempts", "last error"),
            [
                (d.delivery_id, d.event_id[:16], d.kind, d.channel, d.attempts, d.last_error)
                for d in found
            ],
        ),
    )


@notify.command(name="retry")
@click.argument("delivery_id")
@click.pass_context
def retry(ctx: click.Context, delivery_id: str) -> None:
    """Queue a dead letter again for a fresh round of attempts (admins)."""
    delivery = session(ctx).client().retry_dead_letter(delivery_id)
    click.echo(f"delivery {delivery.delivery_id} of {delivery.kind} queued again")
