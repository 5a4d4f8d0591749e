"""Tables. Times are timezone-aware UTC everywhere (sqlmodel's UTCDateTime stores them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Contact(SQLModel, table=True):
    """A citizen on one channel (a Telegram chat, a WhatsApp number, a web session)."""

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_contact_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=256)
    language: str = Field(default="id", max_length=8)
    kecamatan: str | None = Field(default=None, max_length=64)
    kelurahan: str | None = Field(default=None, max_length=64)
    opted_in: bool = False
    consent_at: datetime | None = None
    opted_out_at: datetime | None = None
    blocked_at: datetime | None = None
    last_inbound_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    """The engine's `State` for one contact, as JSON."""

    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    turns: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class InboundMessage(SQLModel, table=True):
    """Every update as received; stored before it is processed so a crash loses nothing."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("channel", "platform_id", name="uq_inbound_channel_platform_id"),
        Index("ix_inbound_unprocessed", "processed_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    platform_id: str = Field(max_length=128)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    kind: str = Field(max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class Outbox(SQLModel, table=True):
    """One outgoing message. Nothing is sent except from here, and only after commit."""

    __table_args__ = (
        Index("ix_outbox_due", "channel", "status", "priority", "next_attempt_at", "id"),
        # the sender takes rows in (priority, id) order: walked, not sorted, with 50,000 queued
        Index("ix_outbox_claim", "channel", "status", "priority", "id"),
        Index("ix_outbox_contact", "contact_id", "id"),
        Index("ix_outbox_platform_message", "channel", "platform_message_id"),
        Index("ix_outbox_template_sent", "channel", "template", "sent_at"),
        # a broadcast's progress, pause and cancel: counted and changed by status
        Index("ix_outbox_broadcast", "broadcast_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    channel: str = Field(max_length=16)
    priority: int = 0  # 0 reply, 1 notification, 2 broadcast
    status: str = Field(default="pending", max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = Field(default=None, max_length=1024)
    platform_message_id: str | None = Field(default=None, max_length=128)
    # what the platform reported after accepting it: sent < delivered < read, or failed
    delivery: str | None = Field(default=None, max_length=16)
    template: str | None = Field(default=None, max_length=128)  # sent as this WhatsApp template
    unsendable_reason: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id")


PRIORITY_REPLY = 0
PRIORITY_NOTIFICATION = 1
PRIORITY_BROADCAST = 2


class SurveyResponse(SQLModel, table=True):
    """One SKM questionnaire. Deliberately no contact, chat or time of day: anonymous."""

    __tablename__ = "survey_response"
    __table_args__ = (Index("ix_survey_period", "submitted_on", "office"),)

    id: int | None = Field(default=None, primary_key=True)
    submitted_on: date  # the day only
    office: str | None = Field(default=None, max_length=64)
    u1: int
    u2: int
    u3: int
    u4: int
    u5: int
    u6: int
    u7: int
    u8: int
    u9: int
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    suggestion: str | None = Field(default=None, max_length=2000)


class Complaint(SQLModel, table=True):
    """A ticket (pengaduan, saran or apresiasi). An anonymous one keeps no contact here:
    the chat that follows it is only in `complaint_follower`, which staff never see."""

    # The inbox lists newest first under any one filter: one index per filter column,
    # each ending in the sort key, keeps a page a short index walk at 100,000 tickets.
    __table_args__ = (
        Index("ix_complaint_state_created", "state", "created_at"),
        Index("ix_complaint_created", "created_at"),
        Index("ix_complaint_kind_created", "kind", "created_at"),
        Index("ix_complaint_category_created", "category", "created_at"),
        Index("ix_complaint_office_created", "office", "created_at"),
        Index("ix_complaint_assignee_created", "assignee_id", "created_at"),
        Index("ix_complaint_due", "due_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)  # random: reveals nothing about others
    kind: str = Field(max_length=16)
    service: str = Field(max_length=64)
    office: str = Field(max_length=64)
    category: str = Field(max_length=32)
    dimension: str = Field(max_length=32)
    urgent: bool = False
    text: str = Field(max_length=2000)
    text_hash: str = Field(max_length=64, index=True)  # the same story twice is a duplicate
    photos: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    happened: str = Field(max_length=16)  # today, week, earlier
    identity: str = Field(max_length=16)  # named, confidential, anonymous
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    display_name: str | None = Field(default=None, max_length=256)
    state: str = Field(default="baru", max_length=32)
    due_on: date  # verification due while new, then follow-up due (working days, WITA)
    assignee_id: int | None = Field(default=None, foreign_key="staff_user.id")
    rating: int | None = None  # the citizen's 1-5 for the resolution
    first_answer_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ComplaintFollower(SQLModel, table=True):
    """Which chat receives a ticket's answers: kept apart from the ticket's identity."""

    __tablename__ = "complaint_follower"

    complaint_id: int = Field(foreign_key="complaint.id", primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class ComplaintUpdate(SQLModel, table=True):
    """One entry in a ticket's history (append-only): a public answer the citizen receives,
    an internal note, a citizen's added information, or a change of state, assignee or
    tags (`changes` holds {field: [before, after]})."""

    __tablename__ = "complaint_update"
    __table_args__ = (Index("ix_complaint_update_ticket", "complaint_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id")
    author: str = Field(max_length=16)  # staff, citizen, system
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    public: bool = False
    text: str | None = Field(default=None, max_length=4000)
    state_after: str | None = Field(default=None, max_length=32)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class StaffUser(SQLModel, table=True):
    """A dashboard account. Roles: admin (everything), staff (work tickets), viewer (read)."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=128)
    password_hash: str = Field(max_length=256)  # argon2id
    role: str = Field(max_length=16)
    telegram_chat_id: str | None = Field(default=None, max_length=64)  # for alerts
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class StaffSession(SQLModel, table=True):
    """A login. The cookie holds a random token; only its hash is stored, so a copy of the
    database does not give anyone a session."""

    __tablename__ = "staff_session"

    token_hash: str = Field(max_length=64, primary_key=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """Who did what, and who saw a confidential identity. Never holds message text."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    action: str = Field(max_length=32)
    target: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip: str | None = Field(default=None, max_length=64)


class StaffAlert(SQLModel, table=True):
    """Something staff must see: an urgent ticket, a deadline coming or passed. `key` makes
    each alert happen once however often the scheduler wakes."""

    __tablename__ = "staff_alert"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True)
    kind: str = Field(max_length=16)  # urgent, due_soon, overdue
    complaint_id: int = Field(foreign_key="complaint.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")  # None: admins
    created_at: datetime = Field(default_factory=utcnow)
    notified_at: datetime | None = None  # sent to Telegram (or nothing to send)


class Application(SQLModel, table=True):
    """An application (permohonan) as the office registered it. The applicant's NIK is kept
    only as an HMAC under the server secret; the verification answer (birth date or the
    NIK's last four digits) only as an HMAC bound to this registration number."""

    __table_args__ = (Index("ix_application_status_changed", "status", "status_changed_at"),
                      Index("ix_application_changed", "status_changed_at", "id"))

    id: int | None = Field(default=None, primary_key=True)
    reg_no: str = Field(max_length=64, unique=True)
    service: str = Field(max_length=64)
    office: str = Field(max_length=64)
    status: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=500)  # shown to the citizen
    nik_hmac: str | None = Field(default=None, max_length=64, index=True)
    verify_kind: str = Field(max_length=16)  # birth_date, nik_last4
    verify_hmac: str = Field(max_length=64)
    status_changed_at: datetime = Field(default_factory=utcnow)
    reminded_at: datetime | None = None  # the "not collected yet" reminder
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ApplicationUpdate(SQLModel, table=True):
    """Every status change, with who made it and through which door."""

    __tablename__ = "application_update"
    __table_args__ = (Index("ix_application_update_app", "application_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id")
    status_before: str | None = Field(default=None, max_length=32)
    status_after: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    source: str = Field(max_length=16)  # import, dashboard, api
    created_at: datetime = Field(default_factory=utcnow)


class ApplicationSubscription(SQLModel, table=True):
    """A chat that asked to be told of every change of one application."""

    __tablename__ = "application_subscription"

    application_id: int = Field(foreign_key="application.id", primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None


class LookupGuard(SQLModel, table=True):
    """Per chat: wrong verification answers, a lock, and the look-up rate window."""

    __tablename__ = "lookup_guard"

    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    failures: int = 0
    locked_until: datetime | None = None
    window_start: datetime = Field(default_factory=utcnow)
    lookups: int = 0


class ApiToken(SQLModel, table=True):
    """A bearer token for the office's own systems (the staff API). Only the token's SHA-256
    is kept: a copy of the database gives no one access. A revoked token keeps its row, so
    the audit log's token names still mean something."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    scope: str = Field(max_length=8)  # read, write (write implies read)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ServiceNotice(SQLModel, table=True):
    """A disruption staff announce (server down, power cut, broken recorder) for one office
    or all (`office` None) and one service or all (`service` None), from `starts_at` until
    `ends_at`, or until staff end it early (`ended_at`)."""

    __tablename__ = "service_notice"
    __table_args__ = (Index("ix_service_notice_ends", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    office: str | None = Field(default=None, max_length=64)
    service: str | None = Field(default=None, max_length=64)
    text_id: str = Field(max_length=500)
    text_en: str | None = Field(default=None, max_length=500)
    starts_at: datetime
    ends_at: datetime
    created_by: int = Field(foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None


class ContactTopic(SQLModel, table=True):
    """A service or topic a contact has asked about: an outreach audience ("everyone who
    asked about KK") is chosen from these."""

    __tablename__ = "contact_topic"
    __table_args__ = (Index("ix_contact_topic_topic", "topic", "contact_id"),)

    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    topic: str = Field(max_length=64, primary_key=True)
    first_at: datetime = Field(default_factory=utcnow)
    last_at: datetime = Field(default_factory=utcnow)


class ContactTag(SQLModel, table=True):
    """A label staff give a contact (e.g. "rt-05", "sekolah-sd1") to reach them later."""

    __tablename__ = "contact_tag"
    __table_args__ = (Index("ix_contact_tag_tag", "tag", "contact_id"),)

    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    tag: str = Field(max_length=32, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class Broadcast(SQLModel, table=True):
    """An outreach message to an audience of consenting contacts.

    draft -> approved (an admin) -> scheduled (send now or at `send_at`) -> sending -> done;
    paused and resumed while sending; cancelled from any state before done. Recipients are
    added to the outbox in batches (`cursor`: the last contact id taken), so a restart goes
    on from the cursor and memory stays flat whatever the audience size.
    """

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=120)
    status: str = Field(default="draft", max_length=16)
    text_id: str = Field(max_length=4096)
    text_en: str | None = Field(default=None, max_length=4096)
    image: str | None = Field(default=None, max_length=128)  # file name under data/broadcasts
    buttons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    audience: dict[str, Any] = Field(default_factory=dict,
                                     sa_column=Column(JSON, nullable=False))
    notice_id: int | None = Field(default=None, foreign_key="service_notice.id")
    send_at: datetime | None = None
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    approved_by: int | None = Field(default=None, foreign_key="staff_user.id")
    approved_at: datetime | None = None
    cursor: int = 0
    planned: int = 0  # the audience size when it was scheduled
    queued: int = 0  # recipients put in the outbox
    skipped_blocked: int = 0
    skipped_opted_out: int = 0
    expanded_at: datetime | None = None  # every recipient is in the outbox
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One recipient of one broadcast: unique, so nobody is queued twice, whatever crashes."""

    __table_args__ = (
        UniqueConstraint("broadcast_id", "contact_id", name="uq_delivery_broadcast_contact"),
        Index("ix_delivery_contact", "contact_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(foreign_key="broadcast.id")
    contact_id: int = Field(foreign_key="contact.id")
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")  # None: skipped
    skipped: str | None = Field(default=None, max_length=16)  # blocked, opted_out
    created_at: datetime = Field(default_factory=utcnow)
    opted_out_at: datetime | None = None  # the contact opted out or blocked soon after


# Core handles on the tables, for the hot paths that skip the ORM (see bot/db.py).
contact_t = Contact.__table__  # type: ignore[attr-defined]
conversation_t = Conversation.__table__  # type: ignore[attr-defined]
inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
outbox_t = Outbox.__table__  # type: ignore[attr-defined]
survey_t = SurveyResponse.__table__  # type: ignore[attr-defined]
complaint_t = Complaint.__table__  # type: ignore[attr-defined]
follower_t = ComplaintFollower.__table__  # type: ignore[attr-defined]
update_t = ComplaintUpdate.__table__  # type: ignore[attr-defined]
staff_t = StaffUser.__table__  # type: ignore[attr-defined]
session_t = StaffSession.__table__  # type: ignore[attr-defined]
audit_t = AuditLog.__table__  # type: ignore[attr-defined]
alert_t = StaffAlert.__table__  # type: ignore[attr-defined]
application_t = Application.__table__  # type: ignore[attr-defined]
app_update_t = ApplicationUpdate.__table__  # type: ignore[attr-defined]
subscription_t = ApplicationSubscription.__table__  # type: ignore[attr-defined]
guard_t = LookupGuard.__table__  # type: ignore[attr-defined]
token_t = ApiToken.__table__  # type: ignore[attr-defined]
notice_t = ServiceNotice.__table__  # type: ignore[attr-defined]
topic_t = ContactTopic.__table__  # type: ignore[attr-defined]
tag_t = ContactTag.__table__  # type: ignore[attr-defined]
broadcast_t = Broadcast.__table__  # type: ignore[attr-defined]
delivery_t = Delivery.__table__  # type: ignore[attr-defined]
