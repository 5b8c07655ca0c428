"""``memory-service keys create | list | revoke``: API keys from the command line (straight to SQL)."""

from __future__ import annotations

import argparse
import sys

from service.domain.auth import KeyService, Role
from service.domain.errors import DomainError
from service.settings import Settings
from service.storage import factory


async def run(settings: Settings, args: argparse.Namespace) -> int:
    db = factory.open_database(settings)
    try:
        return await _command(KeyService(db), args)
    except DomainError as exc:
        print(f"memory-service keys: {exc.detail}")
        return 1
    finally:
        await db.close()


async def _command(keys: KeyService, args: argparse.Namespace) -> int:
    if args.keys_command == "create":
        await keys.ensure_tenant(args.tenant)
        issued = await keys.create_key(args.tenant, Role(args.role), args.name)
        print(issued.secret)
        print(f"id {issued.record.id}, tenant {issued.record.tenant_id}, role {issued.record.role}: "
              "keep the key above, it is not shown again", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        cursor = None
        while True:
            page = await keys.list_keys(args.tenant, cursor, 500)
            for k in page.items:
                state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "active"
                print(f"{k.id}\t{k.tenant_id}\t{k.role}\t{k.prefix}\t{k.name or ''}\t{state}")
            if page.next_cursor is None:
                return 0
            cursor = page.next_cursor
    record = await keys.revoke(args.id)
    print(f"revoked {record.id}")
    return 0
