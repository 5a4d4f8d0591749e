"""The content catalogue: typed, immutable, validated when loaded.

Office staff edit TOML files under `content/`; this module is the one way to load them.
Every problem is reported with the file and field it sits in, all at once, so an editor can
fix a whole batch before trying again (see content/README.md).
"""

from __future__ import annotations

import importlib.util
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.types import LANGS, Lang

# Platform limits the content must respect (shared/platforms.md).
TELEGRAM_TEXT_MAX = 4096
WHATSAPP_BODY_MAX = 1024
BUTTON_LABEL_MAX = 20  # WhatsApp reply-button title; also list button label
ROW_TITLE_MAX = 24  # WhatsApp list row title
ROW_DESCRIPTION_MAX = 72
BRING_MAX = 700  # the first answer must fit a phone screen

TOPIC_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
UNFILLED = re.compile(r"\[\[.*?\]\]")

# Every UI string the engine and the shell use, with the placeholders each may contain.
MESSAGE_KEYS: dict[str, frozenset[str]] = {
    key: frozenset(fields)
    for key, fields in {
        "welcome": (),
        "welcome_back": (),
        "menu_intro": (),
        "docs_intro": (),
        "group_intro": ("group",),
        "service_bring": ("title", "bring", "free_short"),
        "service_section": ("title", "section", "body"),
        "section_steps": (),
        "section_where": (),
        "section_duration": (),
        "section_legal": (),
        "section_free": (),
        "free_short": (),
        "free_note": (),
        "opt_back": (),
        "opt_menu": (),
        "opt_docs": (),
        "faq_intro": (),
        "help": (),
        "lang_intro": (),
        "lang_set": (),
        "lang_name_id": (),
        "lang_name_en": (),
        "stop": (),
        "cancel": (),
        "at_top": (),
        "suggest_intro": (),
        "options_prompt": (),
        "no_match": (),
        "empty_text": (),
        "too_long": (),
        "attachment_unsupported": (),
        "location_received": (),
        "attachment_too_large": (),
        "attachment_bad_type": (),
        "group_private_only": ("bot",),
        "cmd_start": (),
        "cmd_menu": (),
        "cmd_status": (),
        "cmd_pengaduan": (),
        "cmd_bahasa": (),
        "cmd_berhenti": (),
        "cmd_langganan": (),
        "cmd_pengaturan": (),
        "cmd_bantuan": (),
        "cmd_hapus": (),
        "wa_list_button": (),
        "wa_list_section": (),
        "wa_numbered_hint": (),
        "survey_intro": (),
        "survey_question": ("n", "name", "question"),
        "survey_profile_ask": (),
        "survey_suggestion": (),
        "survey_thanks": (),
        "opt_yes": (),
        "opt_skip": (),
        "complaint_kind": (),
        "complaint_service": (),
        "complaint_general": (),
        "complaint_office": (),
        "complaint_text": (),
        "complaint_photo_kept": (),
        "complaint_when": (),
        "when_today": (),
        "when_week": (),
        "when_earlier": (),
        "complaint_identity": (),
        "identity_named": (),
        "identity_confidential": (),
        "identity_anonymous": (),
        "complaint_summary": ("kind", "service", "office", "when", "identity", "text"),
        "opt_send": (),
        "opt_edit_text": (),
        "complaint_filed": ("number", "due"),
        "complaint_too_many": ("limit",),
        "complaint_duplicate": ("number",),
        "complaint_empty_text": (),
        "months": (),
        "tickets_none": (),
        "tickets_list": ("tickets",),
        "ticket_line": ("number", "kind", "state", "date"),
        # sent by staff through the dashboard to every chat following a ticket
        "ticket_answer": ("number", "text"),
        "ticket_state": ("number", "state"),
        "ticket_rate": ("number",),
        # an application's status, looked up or pushed when it changes
        "application_status": ("number", "status", "next"),
        # the citizen checking and following applications (flows/status.py)
        "application_ask_number": (),
        "application_bad_number": (),
        "application_ask_verify": (),
        "application_bad_verify": (),
        "application_no_match": ("left",),
        "application_locked": ("minutes",),
        "application_too_many": (),
        "application_offer": (),
        "application_following": (),
        "application_subscribed": ("number",),
        "application_stopped": ("number",),
        "application_not_followed": ("number",),
        "applications_list": ("applications",),
        "application_line": ("number", "status"),
        "opt_notify_me": (),
        "opt_stop_notify": ("number",),
        "opt_check_other": (),
        "opt_my_applications": (),
        "opt_stop_updates": (),
        # pushed by the reminder sweep: not collected after N days; collected -> SKM
        "application_reminder": ("number", "date", "office", "next"),
        "application_survey_invite": ("number", "office"),
        # the citizen following a ticket: one ticket by number, adding information, rating
        "ticket_not_found": (),
        "tickets_add_hint": (),
        "opt_add_info": ("number",),
        "opt_my_tickets": (),
        "ticket_add_ask": ("number",),
        "ticket_add_empty": (),
        "ticket_add_photo_kept": (),
        "ticket_info_added": ("number",),
        "ticket_info_closed": ("number",),
        "ticket_info_refused": (),
        "ticket_rated": ("number",),
        "ticket_rate_refused": (),
        "opt_survey": (),
        # a disruption staff posted (bot/services/notices.py), shown before a service's answer
        "service_notice": ("notices",),
        "service_notice_line": ("office", "text", "until"),
        "service_notice_all_offices": (),
        "broadcast_footer": (),
        # consent to information from the office (flows/settings.py): asked once at first
        # contact; /langganan, /berhenti ("stop" is the opt-out's confirmation above)
        "consent_ask": (),
        "opt_consent_yes": (),
        "opt_consent_no": (),
        "consent_no": (),
        "subscribed": (),
        # settings: language, area (kecamatan/kelurahan), subscription
        "settings_intro": ("language", "area", "subscription"),
        "settings_subscribed": (),
        "settings_not_subscribed": (),
        "opt_settings_lang": (),
        "opt_settings_area": (),
        "opt_subscribe": (),
        "opt_unsubscribe": (),
        "area_none": (),
        "area_kecamatan": ("kecamatan",),
        "area_kelurahan": ("kelurahan", "kecamatan"),
        "area_choose_kecamatan": (),
        "area_choose_kelurahan": ("kecamatan",),
        "area_set": ("area",),
        "area_cleared": (),
        "area_unknown": (),
        "opt_clear_area": (),
        "opt_next_page": (),
        # "hapus data saya" (flows/privacy.py): what is deleted, what is kept and why
        "privacy_confirm": (),
        "opt_privacy_yes": (),
        "opt_privacy_no": (),
        "privacy_done": (),
        "privacy_cancelled": (),
        "stale_button": (),
        "unknown_fact": (),
        "office_entry": ("name", "address", "phone", "whatsapp", "hours"),
        "web_title": (),
        "web_subtitle": (),
        "web_placeholder": (),
        "web_send": (),
        "web_offline": (),
        "web_error": (),
        "web_bad_request": (),
        "web_too_large": (),
        "web_rate_limited": (),
        "console_intro": (),
        "console_prompt": (),
        "console_bye": (),
    }.items()
}

# Placeholders a topic answer may use; the engine fills them from offices and messages.
ANSWER_FIELDS = frozenset({"offices", "hours", "free_note"})

MAIN_TARGETS = re.compile(
    r"^(docs|faq|help|lang|settings|survey|complaint|[tsg]:[a-z0-9-]+)$")


class ContentError(Exception):
    """Raised with every problem found, each naming its file and field."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Text(_Model):
    """A citizen-facing text in every language Lontar speaks."""

    id: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.id


class Service(_Model):
    id: str
    group: str
    label: Text
    description: Text
    title: Text
    phrasings: tuple[str, ...] = Field(min_length=3)
    bring: Text
    steps: Text
    where: Text
    duration: Text
    legal: Text

    kind: Literal["service"] = "service"


TopicKind = Literal["info", "faq", "action", "smalltalk", "external"]


class Topic(_Model):
    id: str
    kind: TopicKind
    label: Text
    description: Text | None = None
    phrasings: tuple[str, ...] = Field(min_length=2)
    answer: Text
    links: tuple[str, ...] = ()  # main-menu targets offered as buttons under the answer


class Group(_Model):
    id: str
    label: Text
    description: Text | None = None
    services: tuple[str, ...] = Field(min_length=1)


class MenuEntry(_Model):
    target: str
    label: Text
    description: Text | None = None

    @field_validator("target")
    @classmethod
    def _target_shape(cls, v: str) -> str:
        if not MAIN_TARGETS.match(v):
            raise ValueError(
                "must be docs, faq, help, lang, settings, survey, complaint, t:<topic>, "
                "s:<service> or g:<group>")
        return v


class Office(_Model):
    id: str
    kind: Literal["dinas", "kecamatan"]
    name: Text
    label: Text  # short, for buttons
    kecamatan: str | None = None
    address: str = ""  # empty = unverified: shown as "tanyakan di kantor"
    phone: str = ""
    whatsapp: str = ""
    hours: Text
    latitude: float | None = None
    longitude: float | None = None


class Kelurahan(_Model):
    code: str = Field(pattern=r"^\d{4}$")
    name: str


class Kecamatan(_Model):
    id: str
    code: str = Field(pattern=r"^53\.71\.\d{2}$")
    name: str
    kelurahan: tuple[Kelurahan, ...] = Field(min_length=1)


CommandAction = Literal["menu", "back", "cancel", "help", "lang", "stop", "subscribe",
                        "settings", "delete"]
COMMAND_ACTIONS: tuple[CommandAction, ...] = ("menu", "back", "cancel", "help", "lang", "stop",
                                              "subscribe", "settings", "delete")


class Language(_Model):
    """How citizens type: word and phrase rewrites, stopwords, global command words, and the
    words that answer a yes/no question typed instead of pressed."""

    stopwords: tuple[str, ...] = ()
    words: dict[str, str] = {}
    phrases: dict[str, str] = {}
    commands: dict[CommandAction, tuple[str, ...]]
    answers: dict[Literal["yes", "no"], tuple[str, ...]] = {}


class Unsur(_Model):
    """One SKM element: its question and the four answers, scored 1 to 4 in order."""

    id: str = Field(pattern=r"^U[1-9]$")
    name: Text
    question: Text
    answers: tuple[Text, Text, Text, Text]


class ProfileField(_Model):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    question: Text
    options: tuple[Text, ...] = Field(min_length=2, max_length=9)


class Survey(_Model):
    unsur: tuple[Unsur, ...] = Field(min_length=9, max_length=9)
    profile: tuple[ProfileField, ...] = ()

    @field_validator("unsur")
    @classmethod
    def _u1_to_u9(cls, v: tuple[Unsur, ...]) -> tuple[Unsur, ...]:
        if [u.id for u in v] != [f"U{i}" for i in range(1, 10)]:
            raise ValueError("the nine unsur must be U1 to U9, in order")
        return v


class ComplaintKind(_Model):
    id: str = Field(pattern=r"^[a-z]+$")
    prefix: str = Field(pattern=r"^[A-Z]{3}$")  # of the ticket number: ADU-2026-7K3QF9
    label: Text


class Dimension(_Model):
    id: str
    label: Text


class Category(_Model):
    id: str
    label: Text
    dimension: str
    urgent: bool = False
    keywords: tuple[str, ...] = ()


class TicketState(_Model):
    id: str = Field(pattern=r"^[a-z-]+$")
    type: Literal["open", "closed"]
    label: Text


class Complaints(_Model):
    verify_working_days: int = Field(3, ge=1)
    follow_up_working_days: int = Field(5, ge=1)
    holidays: tuple[date, ...] = ()
    max_per_day: int = Field(3, ge=1)
    kind: tuple[ComplaintKind, ...] = Field(min_length=1, max_length=3)
    dimension: tuple[Dimension, ...] = Field(min_length=1)
    category: tuple[Category, ...] = Field(min_length=1)
    state: tuple[TicketState, ...] = Field(min_length=2)


class ApplicationStatus(_Model):
    id: str = Field(pattern=r"^[a-z-]+$")
    type: Literal["open", "ready", "action", "done", "closed"]
    label: Text
    next: Text  # may use {office} and {reason}


class Applications(_Model):
    remind_ready_after_days: int = Field(7, ge=1)
    verify_attempts: int = Field(5, ge=1)
    lock_minutes: int = Field(60, ge=1)
    lookups_per_hour: int = Field(20, ge=1)
    status: tuple[ApplicationStatus, ...] = Field(min_length=2)

    @field_validator("status")
    @classmethod
    def _unique(cls, v: tuple[ApplicationStatus, ...]) -> tuple[ApplicationStatus, ...]:
        ids = [s.id for s in v]
        if len(set(ids)) != len(ids):
            raise ValueError("status ids must be unique")
        return v

    def get(self, status_id: str) -> ApplicationStatus | None:
        return next((s for s in self.status if s.id == status_id), None)


AnyTopic = Service | Topic


@dataclass(frozen=True, eq=False)
class Content:
    """The whole catalogue, immutable once loaded."""

    services: Mapping[str, Service]
    topics: Mapping[str, Topic]
    groups: Mapping[str, Group]
    main_menu: tuple[MenuEntry, ...]
    offices: tuple[Office, ...]
    kecamatan: tuple[Kecamatan, ...]
    language: Language
    messages: Mapping[Lang, Mapping[str, str]]
    survey: Survey | None = None
    complaints: Complaints | None = None
    applications: Applications | None = None
    source: str = ""

    def msg(self, lang: Lang, key: str, **fields: str) -> str:
        """A UI string; placeholders are filled with `str.format`."""
        text = self.messages[lang][key]
        return text.format(**fields) if fields else text

    def format_date(self, lang: Lang, day: date) -> str:
        """A date as citizens read it: 25 November 2026."""
        months = self.messages[lang]["months"].split(",")
        return f"{day.day} {months[day.month - 1].strip()} {day.year}"

    def topic(self, topic_id: str) -> AnyTopic | None:
        return self.services.get(topic_id) or self.topics.get(topic_id)

    @cached_property
    def all_topics(self) -> dict[str, AnyTopic]:
        return {**self.services, **self.topics}

    def group_of(self, service_id: str) -> Group | None:
        for group in self.groups.values():
            if service_id in group.services:
                return group
        return None


# --- loading ---------------------------------------------------------------------------------


def default_content_dir() -> Path:
    """The repo's `content/` when run from a clone, else the copy installed with the package.

    Installed, the folder is the package `lontar_content`, so that editing `content/` in a
    clone takes effect without reinstalling, and nothing named `content` lands in
    site-packages.
    """
    beside = Path(__file__).resolve().parent.parent / "content"
    if (beside / "menu.toml").exists():
        return beside
    spec = importlib.util.find_spec("lontar_content")  # a folder of data, no __init__.py
    if spec is None or not spec.submodule_search_locations:
        raise ContentError(["content: not found (set LONTAR_CONTENT_DIR)"])
    return Path(next(iter(spec.submodule_search_locations)))


def _format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


class _Collector:
    def __init__(self, root: Path):
        self.root = root
        self.errors: list[str] = []

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def add(self, path: Path, field: str, message: str) -> None:
        self.errors.append(f"{self.rel(path)}: {field}: {message}")

    def read(self, path: Path) -> dict[str, Any] | None:
        if not path.exists():
            self.add(path, "(file)", "missing")
            return None
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            self.add(path, "(syntax)", str(exc))
            return None
        except UnicodeDecodeError:
            self.add(path, "(file)", "not UTF-8 text")
            return None
        self._unfilled(path, data, [])
        return data

    def _unfilled(self, path: Path, value: Any, loc: list[Any]) -> None:
        """An editor's `[[...]]` marker left in any text value."""
        if isinstance(value, str) and UNFILLED.search(value):
            self.add(path, _format_loc(loc), "unfilled placeholder [[...]]")
        elif isinstance(value, dict):
            for key, item in value.items():
                self._unfilled(path, item, [*loc, key])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._unfilled(path, item, [*loc, i])

    def model(self, cls: type[BaseModel], data: Any, path: Path, prefix: str = "") -> Any:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = _format_loc([*([prefix] if prefix else []), *err["loc"]])
                self.add(path, loc, err["msg"])
        return None


def _placeholders(text: str) -> set[str]:
    names = set()
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None:
            names.add(name)
    return names


def load_content(root: Path | str | None = None) -> Content:
    """Load and validate the catalogue; raise `ContentError` listing every problem."""
    root = Path(root) if root else default_content_dir()
    c = _Collector(root)
    services: dict[str, Service] = {}
    topics: dict[str, Topic] = {}

    for path in sorted((root / "services").glob("*.toml")):
        data = c.read(path)
        if data is None:
            continue
        svc = c.model(Service, data, path)
        if svc is None:
            continue
        if svc.id != path.stem:
            c.add(path, "id", f"must equal the file name ({path.stem!r})")
        services[svc.id] = svc
    if not services:
        c.add(root / "services", "(folder)", "no service files found")

    for name in ("topics.toml", "faq.toml", "agencies.toml"):
        path = root / name
        data = c.read(path)
        if data is None:
            continue
        for i, raw in enumerate(data.get("topic", [])):
            topic = c.model(Topic, raw, path, f"topic[{i}]")
            if topic is None:
                continue
            if topic.id in services or topic.id in topics:
                c.add(path, f"topic[{i}].id", f"duplicate topic id {topic.id!r}")
            topics[topic.id] = topic

    menu_path = root / "menu.toml"
    menu = c.read(menu_path) or {}
    groups: dict[str, Group] = {}
    for i, raw in enumerate(menu.get("group", [])):
        group = c.model(Group, raw, menu_path, f"group[{i}]")
        if group is not None:
            if group.id in groups:
                c.add(menu_path, f"group[{i}].id", f"duplicate group id {group.id!r}")
            groups[group.id] = group
    main: list[MenuEntry] = []
    for i, raw in enumerate(menu.get("main", [])):
        entry = c.model(MenuEntry, raw, menu_path, f"main[{i}]")
        if entry is not None:
            main.append(entry)

    offices_path = root / "offices.toml"
    offices_raw = c.read(offices_path) or {}
    offices = [
        o
        for i, raw in enumerate(offices_raw.get("office", []))
        if (o := c.model(Office, raw, offices_path, f"office[{i}]")) is not None
    ]

    areas_path = root / "areas.toml"
    areas_raw = c.read(areas_path) or {}
    kecamatan = [
        k
        for i, raw in enumerate(areas_raw.get("kecamatan", []))
        if (k := c.model(Kecamatan, raw, areas_path, f"kecamatan[{i}]")) is not None
    ]

    lang_path = root / "language.toml"
    language = c.model(Language, c.read(lang_path) or {}, lang_path)

    messages: dict[Lang, dict[str, str]] = {}
    for lang in LANGS:
        path = root / f"messages.{lang}.toml"
        raw = c.read(path)
        msgs: dict[str, str] = {}
        messages[lang] = msgs
        if raw is None:
            continue
        for key, value in raw.items():
            if key not in MESSAGE_KEYS:
                c.add(path, key, "unknown message key (not used by Lontar)")
            elif not isinstance(value, str) or not value.strip():
                c.add(path, key, "must be a non-empty text")
            else:
                msgs[key] = value.strip()
        for key in MESSAGE_KEYS.keys() - msgs.keys() - raw.keys():
            c.add(path, key, "missing message")

    survey_path = root / "survey.toml"
    survey = c.model(Survey, c.read(survey_path) or {}, survey_path)

    complaints_path = root / "complaints.toml"
    complaints = c.model(Complaints, c.read(complaints_path) or {}, complaints_path)

    applications_path = root / "applications.toml"
    applications = c.model(Applications, c.read(applications_path) or {}, applications_path)

    content = Content(
        applications=applications,
        complaints=complaints,
        survey=survey,
        services=services,
        topics=topics,
        groups=groups,
        main_menu=tuple(main),
        offices=tuple(offices),
        kecamatan=tuple(kecamatan),
        language=language or Language(commands={}),
        messages=messages,
        source=str(root),
    )
    _check_references(content, root, c)
    if c.errors:
        raise ContentError(c.errors)
    return content


_TOPIC_FILES = {"faq": "faq.toml", "external": "agencies.toml"}


def _check_references(content: Content, root: Path, c: _Collector) -> None:
    """Cross-file checks: ids, references, placeholders, lengths of short labels."""
    menu_path = root / "menu.toml"
    for name, topic in content.all_topics.items():
        path = (
            root / "services" / f"{name}.toml"
            if topic.kind == "service"
            else root / _TOPIC_FILES.get(topic.kind, "topics.toml")
        )
        where = "" if topic.kind == "service" else f"topic[{name}]."
        if not TOPIC_ID.match(name):
            c.add(path, f"{where}id", "use lower-case letters, digits and hyphens")
        for lang in LANGS:
            _check_len(c, path, f"{where}label.{lang}", topic.label.get(lang), BUTTON_LABEL_MAX)
            if topic.description is not None:
                _check_len(
                    c, path, f"{where}description.{lang}", topic.description.get(lang),
                    ROW_DESCRIPTION_MAX,
                )
        if isinstance(topic, Service):
            if topic.group not in content.groups:
                c.add(path, "group", f"unknown group {topic.group!r} (see menu.toml)")
            elif name not in content.groups[topic.group].services:
                c.add(path, "group", f"group {topic.group!r} in menu.toml does not list {name!r}")
            for lang in LANGS:
                _check_len(c, path, f"bring.{lang}", topic.bring.get(lang), BRING_MAX)
                for section in ("steps", "where", "duration", "legal"):
                    body = getattr(topic, section).get(lang)
                    _check_len(c, path, f"{section}.{lang}", body, WHATSAPP_BODY_MAX - 100)
        else:
            menu_targets = {e.target for e in content.main_menu}
            for link in topic.links:
                if link not in menu_targets:
                    c.add(path, f"{where}links", f"{link!r} is not a main-menu target")
            for lang in LANGS:
                extra = _placeholders(topic.answer.get(lang)) - ANSWER_FIELDS
                if extra:
                    c.add(path, f"{where}answer.{lang}", f"unknown placeholder(s) {sorted(extra)}")
        for i, phrase in enumerate(topic.phrasings):
            if not phrase.strip():
                c.add(path, f"{where}phrasings[{i}]", "empty phrasing")
    for gid, group in content.groups.items():
        for lang in LANGS:
            _check_len(c, menu_path, f"group[{gid}].label.{lang}", group.label.get(lang),
                       BUTTON_LABEL_MAX)
        for sid in group.services:
            if sid not in content.services:
                c.add(menu_path, f"group[{gid}].services", f"unknown service {sid!r}")
    grouped = {s for g in content.groups.values() for s in g.services}
    for sid in content.services.keys() - grouped:
        c.add(menu_path, "group", f"service {sid!r} is in no group")
    if not 1 <= len(content.main_menu) <= 10:
        c.add(menu_path, "main", "the main menu needs 1 to 10 entries (WhatsApp list limit)")
    if len(content.groups) > 9:
        c.add(menu_path, "group", "at most 9 groups, so the list fits WhatsApp with 'back'")
    for i, entry in enumerate(content.main_menu):
        kind, _, ref = entry.target.partition(":")
        if (kind == "t" and ref not in content.topics) or (
            kind == "s" and ref not in content.services) or (
            kind == "g" and ref not in content.groups):
            c.add(menu_path, f"main[{i}].target", f"{entry.target!r} does not resolve")
        for lang in LANGS:
            _check_len(c, menu_path, f"main[{i}].label.{lang}", entry.label.get(lang),
                       BUTTON_LABEL_MAX)
            if entry.description is not None:
                _check_len(c, menu_path, f"main[{i}].description.{lang}",
                           entry.description.get(lang), ROW_DESCRIPTION_MAX)
    survey_path = root / "survey.toml"
    if content.survey is not None:
        for u in content.survey.unsur:
            for i, answer in enumerate(u.answers):
                for lang in LANGS:
                    _check_len(c, survey_path, f"unsur[{u.id}].answers[{i}].{lang}",
                               answer.get(lang), BUTTON_LABEL_MAX)
        for f in content.survey.profile:
            for i, option in enumerate(f.options):
                for lang in LANGS:
                    _check_len(c, survey_path, f"profile[{f.id}].options[{i}].{lang}",
                               option.get(lang), BUTTON_LABEL_MAX)
    applications_path = root / "applications.toml"
    for st in content.applications.status if content.applications else ():
        for lang in LANGS:
            _check_len(c, applications_path, f"status[{st.id}].label.{lang}",
                       st.label.get(lang), BUTTON_LABEL_MAX)
            fields = {f for _, f, _, _ in string.Formatter().parse(st.next.get(lang)) if f}
            if fields - {"office", "reason"}:
                c.add(applications_path, f"status[{st.id}].next.{lang}",
                      f"unknown placeholder(s) {sorted(fields - {'office', 'reason'})}; "
                      "allowed: office, reason")
    complaints_path = root / "complaints.toml"
    if content.complaints is not None:
        dims = {d.id for d in content.complaints.dimension}
        for cat in content.complaints.category:
            if cat.dimension not in dims:
                c.add(complaints_path, f"category[{cat.id}].dimension",
                      f"unknown dimension {cat.dimension!r}")
            for lang in LANGS:
                _check_len(c, complaints_path, f"category[{cat.id}].label.{lang}",
                           cat.label.get(lang), BUTTON_LABEL_MAX)
        for ckind in content.complaints.kind:
            for lang in LANGS:
                _check_len(c, complaints_path, f"kind[{ckind.id}].label.{lang}",
                           ckind.label.get(lang), BUTTON_LABEL_MAX)
    lang_path = root / "language.toml"
    for action in COMMAND_ACTIONS:
        if not content.language.commands.get(action):
            c.add(lang_path, f"commands.{action}", "needs at least one word")
    answers = content.language.answers
    if not answers.get("yes"):
        c.add(lang_path, "answers.yes", "needs at least one word")
    if not answers.get("no"):
        c.add(lang_path, "answers.no", "needs at least one word")
    seen: dict[str, str] = {}
    word_lists = [(f"commands.{k}", v) for k, v in content.language.commands.items()]
    word_lists += [(f"answers.{k}", v) for k, v in answers.items()]
    for where, words in word_lists:  # a word in two places would only ever do the first
        for word in words:
            if seen.get(word, where) != where:
                c.add(lang_path, where, f"{word!r} is also in {seen[word]}")
            seen.setdefault(word, where)
    if "start" not in content.language.commands.get("menu", ()):
        c.add(lang_path, "commands.menu", "must contain 'start' (channels send it first)")
    ids = [o.id for o in content.offices]
    offices_path = root / "offices.toml"
    if len(set(ids)) != len(ids):
        c.add(offices_path, "office.id", "duplicate office id")
    kec_ids = {k.id for k in content.kecamatan}
    _check_areas(content, root / "areas.toml", c)
    for o in content.offices:
        for lang in LANGS:
            _check_len(c, offices_path, f"office[{o.id}].label.{lang}", o.label.get(lang),
                       BUTTON_LABEL_MAX)
        if o.kecamatan is not None and o.kecamatan not in kec_ids:
            c.add(offices_path, f"office[{o.id}].kecamatan", f"unknown kecamatan {o.kecamatan!r}")
    for lang in LANGS:
        path = root / f"messages.{lang}.toml"
        for key, text in content.messages[lang].items():
            try:
                got = _placeholders(text)
            except ValueError as exc:
                c.add(path, key, f"broken placeholder: {exc}")
                continue
            if key == "months" and len(text.split(",")) != 12:
                c.add(path, key, "needs the 12 month names separated by commas")
            if got - MESSAGE_KEYS[key]:
                c.add(path, key, f"unknown placeholder(s) {sorted(got - MESSAGE_KEYS[key])}; "
                      f"allowed: {sorted(MESSAGE_KEYS[key]) or 'none'}")
            if key.startswith(("opt_", "lang_name_", "section_", "web_send", "wa_list_",
                               "when_", "identity_", "complaint_general")):
                # a ticket number is always 15 characters (ADU-2026-7K3QF9)
                _check_len(c, path, key, text.replace("{number}", "X" * 15), BUTTON_LABEL_MAX)


def _check_areas(content: Content, path: Path, c: _Collector) -> None:
    """Kecamatan and kelurahan become buttons, and their ids part of button payloads."""
    if len({k.id for k in content.kecamatan}) != len(content.kecamatan):
        c.add(path, "kecamatan.id", "duplicate kecamatan id")
    if len(content.kecamatan) > 8:
        c.add(path, "kecamatan", "at most 8, so the list fits WhatsApp with two more buttons")
    for k in content.kecamatan:
        if not TOPIC_ID.match(k.id):
            c.add(path, f"kecamatan[{k.id}].id", "use lower-case letters, digits and hyphens")
        _check_len(c, path, f"kecamatan[{k.id}].name", k.name, BUTTON_LABEL_MAX)
        codes = [kel.code for kel in k.kelurahan]
        if len(set(codes)) != len(codes):
            c.add(path, f"kecamatan[{k.id}].kelurahan", "duplicate kelurahan code")
        for kel in k.kelurahan:
            _check_len(c, path, f"kecamatan[{k.id}].kelurahan[{kel.code}].name", kel.name,
                       BUTTON_LABEL_MAX)


def _check_len(c: _Collector, path: Path, field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        c.add(path, field, f"{len(text)} characters, at most {limit} allowed")


def unverified_facts(content: Content) -> list[str]:
    """Office facts still empty: shown to citizens as 'tanyakan di kantor' until filled."""
    missing = []
    for o in content.offices:
        for field in ("address", "phone", "whatsapp"):
            if not getattr(o, field):
                missing.append(f"offices.toml: office[{o.id}].{field}")
    return missing
