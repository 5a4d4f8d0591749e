"""`lontar privacy export CONTACT`: everything stored about one citizen, as JSON.

For an access request (UU 27/2022 Ps 7, portability Ps 13): the operator prints what Lontar
holds about a chat and hands over what the office decides. CONTACT is `channel:external_id`
(`telegram:5001`, `whatsapp:6281234567890`) or the internal contact id. The output holds
personal data: write it to a protected file, never to a shared log. Each export is written to
the audit log (the contact id and the operating-system account that ran it).

Exit codes: 0 printed; 1 no such contact; 2 a malformed CONTACT.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import Lontar


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pv = sub.add_parser("privacy", help="personal data: export what is stored about a contact")
    p = pv.add_subparsers(dest="action", required=True)
    ex = p.add_parser("export", help="print as JSON everything stored about one contact")
    ex.add_argument("contact", metavar="CONTACT",
                    help="channel:external_id (e.g. telegram:5001) or the contact id")


def run(lontar: Lontar, args: argparse.Namespace) -> int:
    from bot.services import privacy

    spec = str(args.contact).strip()
    channel, sep, external = spec.partition(":")
    if not (spec.isdigit() or (sep and channel and external)):
        print(f"lontar: CONTACT must be channel:external_id or a contact id, not {spec!r}",
              file=sys.stderr)
        return 2
    from bot.services.staff import audit

    with lontar.db.engine.begin() as conn:
        contact_id = privacy.find_contact(conn, spec)
        if contact_id is None:
            print(f"lontar: no contact {spec}", file=sys.stderr)
            return 1
        data = privacy.export(conn, contact_id)
        # who read a citizen's data is itself a record the office must keep (Ps 31): the
        # operating-system account that ran the export, never the data itself
        audit(conn, None, "privacy_export", f"contact:{contact_id}", by=_operator())
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid:{os.getuid()}"
