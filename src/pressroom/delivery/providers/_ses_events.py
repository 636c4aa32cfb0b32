"""SES's feedback as pressroom events: one SNS-delivered notification (identity
notifications' ``notificationType`` or configuration-set event publishing's ``eventType``) is
a bounce, complaint or delivery for each recipient it names:
https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html ,
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
"""

from __future__ import annotations

from typing import Any

from pressroom.audience.events import Event
from pressroom.delivery.webhooks import iso_time, issue_number
from pressroom.errors import WebhookMalformed


def notification_events(n: dict[str, Any], sns_id: str) -> list[Event]:
    """The events of one SES notification: one per recipient it names."""
    kind_name = n.get("notificationType") or n.get("eventType")
    mail = _obj(n.get("mail"))
    tags = _obj(mail.get("tags"))
    issue_tag = tags.get("pressroom_issue") or [None]
    issue = issue_number(issue_tag[0] if isinstance(issue_tag, list) and issue_tag else None)
    mid = mail.get("messageId")
    found: list[tuple[str, Any, Any, str, str]] = []  # kind, address, time, reason, key part
    if kind_name == "Bounce":
        b = _obj(n.get("bounce"))
        kind = "hard_bounce" if b.get("bounceType") == "Permanent" else "soft_bounce"
        for r in _array(b.get("bouncedRecipients"), "bounce.bouncedRecipients"):
            if isinstance(r, dict):
                reason = str(r.get("diagnosticCode") or b.get("bounceSubType") or "")
                found.append((kind, r.get("emailAddress"), b.get("timestamp"), reason, "b"))
        key = str(b.get("feedbackId") or sns_id)
    elif kind_name == "Complaint":
        c = _obj(n.get("complaint"))
        if c.get("complaintFeedbackType") == "not-spam":
            return []
        for r in _array(c.get("complainedRecipients"), "complaint.complainedRecipients"):
            if isinstance(r, dict):
                reason = str(c.get("complaintFeedbackType") or "complaint")
                found.append(("complaint", r.get("emailAddress"), c.get("timestamp"), reason, "c"))
        key = str(c.get("feedbackId") or sns_id)
    elif kind_name == "Delivery":
        d = _obj(n.get("delivery"))
        for address in _array(d.get("recipients"), "delivery.recipients"):
            found.append(("delivered", address, d.get("timestamp"), "", "d"))
        key = str(mid or sns_id)
    else:
        return []
    events = []
    for kind, address, when, reason, part in found:
        if not isinstance(address, str) or not address:
            raise WebhookMalformed(f"ses webhook: a {kind_name} names a recipient without address")
        events.append(
            Event(
                "ses",
                kind,
                address,
                iso_time(when, f"ses webhook: {kind_name} timestamp"),
                id=f"{part}:{key}:{address.lower()}",
                reason=reason[:500],
                issue=issue,
                message_id=str(mid) if mid else None,
            )
        )
    return events


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _array(value: Any, where: str) -> list[Any]:
    """``value`` when it is a JSON array (absent: empty); anything else is not SES's format
    (a number cannot be walked, and a string would be read one character at a time)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookMalformed(f"ses webhook: {where}: expected an array, got {value!r:.40}")
    return value
