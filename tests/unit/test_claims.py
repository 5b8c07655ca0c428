"""Claim-owner identities: one per locked slot of a data folder, given back when the process dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service.workers.claims import claim_owner

HOLD = "import sys, time; from service.workers.claims import claim_owner; o = claim_owner(__import__('pathlib').Path(sys.argv[1])); print(o.id, flush=True); time.sleep(600)"


def test_live_owners_get_distinct_identities_and_a_closed_one_is_reused(tmp_path: Path) -> None:
    first, second = claim_owner(tmp_path), claim_owner(tmp_path)
    try:
        assert first.reclaim and second.reclaim and first.id != second.id
        first_id = first.id
        first.close()
        again = claim_owner(tmp_path)
        assert again.id == first_id and again.reclaim
        again.close()
    finally:
        first.close()
        second.close()


def test_a_killed_process_identity_is_taken_over_but_never_a_live_one(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).parents[2])
    try:
        assert child.stdout is not None
        child_id = child.stdout.readline().strip()
        alive = claim_owner(tmp_path)
        assert alive.id != child_id  # the child still holds its slot
        child.kill()
        child.wait(timeout=30)
        taken = claim_owner(tmp_path)
        assert taken.id == child_id and taken.reclaim
        taken.close()
        alive.close()
    finally:
        child.kill()
        child.wait(timeout=30)


def test_without_a_folder_the_identity_is_fresh_and_never_reclaimed() -> None:
    a, b = claim_owner(None), claim_owner(None)
    assert a.id != b.id and not a.reclaim and not b.reclaim
