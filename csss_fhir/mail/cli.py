"""`csss mail ...`: the production sender (`worker`), delivery state and resend."""

from __future__ import annotations

import logging
import time

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from csss_fhir.errors import CsssError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


@click.group("mail")
def mail_group() -> None:
    """E-mail outbox: send, inspect, resend."""


@mail_group.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--interval", default=5.0, show_default=True,
              help="Seconds between polls when nothing is due.")
@click.option("--batch", default=100, show_default=True, help="Messages per poll at most.")
@with_appcontext
def worker(once: bool, interval: float, batch: int) -> None:
    """Deliver due outbox messages; several workers may run at once."""
    from csss_fhir.extensions import services
    from csss_fhir.mail.outbox import deliver_due
    from csss_fhir.models import db

    backend = services().mail
    failures = 0
    while True:
        try:
            counts = deliver_due(db.session, backend, limit=batch)
        except DBAPIError as err:
            # The database went away: wait (doubling, at most a minute) and try again;
            # the worker never exits on its own for it.
            db.session.remove()
            if once:
                raise click.ClickException(
                    f"the database does not answer ({type(err).__name__}); nothing sent"
                ) from err
            failures += 1
            delay = min(MAX_BACKOFF_SECONDS, interval * 2 ** (failures - 1))
            log.warning("database unavailable; mail worker retries",
                        extra={"backoff_s": delay, "error": type(err).__name__})
            time.sleep(delay)
            continue
        failures = 0
        db.session.remove()
        if once:
            click.echo(f"sent {counts['sent']}, retrying {counts['pending']}, "
                       f"failed {counts['failed']}, uncertain {counts['uncertain']}")
            return
        if sum(counts.values()) < batch:
            time.sleep(interval)


@mail_group.command("status")
@click.argument("report_id", required=False)
@click.option("--state",
              type=click.Choice(["pending", "sending", "sent", "failed", "uncertain"]))
@with_appcontext
def status(report_id: str | None, state: str | None) -> None:
    """Delivery state of one report's e-mails, or of the latest report e-mails."""
    from csss_fhir.mail import deliveries
    from csss_fhir.models import db

    rows = (deliveries.report_deliveries(db.session, report_id) if report_id
            else deliveries.recent_deliveries(db.session, status=state))
    for d in rows:
        when = d.sent_at or d.next_attempt_at
        click.echo(f"{d.mail_id}  report {d.report_id}  {d.status:<7}  attempts {d.attempts}  "
                   f"{when.isoformat(timespec='seconds') if when else '-'}  "
                   f"{d.last_error or ''}".rstrip())
    if not rows:
        click.echo("no e-mails")


@mail_group.command("resend")
@click.argument("mail_id")
@with_appcontext
def resend(mail_id: str) -> None:
    """Send a report e-mail again (a failed one as itself, a sent one as a new copy)."""
    from csss_fhir.extensions import services
    from csss_fhir.mail import deliveries, outbox
    from csss_fhir.models import db

    try:
        delivery = deliveries.resend(db.session, mail_id, svc=services())
    except CsssError as err:
        raise click.ClickException(str(err)) from err
    outbox.deliver(db.session, services().mail, [delivery.mail_id])
    row = deliveries.report_deliveries(db.session, delivery.report_id)
    final = next(d for d in row if d.mail_id == delivery.mail_id)
    click.echo(f"{final.status} {final.last_error or ''}".rstrip())
    click.echo(final.mail_id)
