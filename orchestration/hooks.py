"""Job hooks: a failed (or blocked) step posts to the team's webhook, when one is set."""

import dagster as dg

from ingestion.config import read_config
from quality.notify import build_payload, failure_message, post_webhook


@dg.failure_hook(required_resource_keys={"warehouse"})
def notify_on_failure(context: dg.HookContext) -> None:
    warehouse = context.resources.warehouse
    config = read_config(warehouse.data_path)
    if not config.webhook_url:
        return
    error = context.op_exception
    title, text = failure_message(
        context.step_key, str(error) if error else "", str(warehouse.data_path)
    )
    try:
        status = post_webhook(
            config.webhook_url, build_payload(config.webhook_format, title, text, context.run_id)
        )
        context.log.info(f"failure posted to webhook ({status})")
    except OSError as exc:  # a dead webhook must not hide the real failure
        context.log.warning(f"could not post the failure to the webhook: {exc}")
