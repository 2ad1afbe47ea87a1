"""SMART system scopes, v1 and v2, and what a token request is granted (RFC 6749 §3.3).

A client is registered with SMART v1 system scopes (`system/<Type>.read|write`, `*` for
every type), and every rule (`access.py`, `workflow/states.py`) reads those. A token request
may also name SMART v2 scopes (`system/Patient.rs`, `system/*.cruds`): they map onto the v1
rules as `read` = `rs` and `write` = `cud`. Those pairs are granted together or not at all,
because the rules do not tell reading from searching, or creating from updating: a request
for `system/Patient.r` alone is not granted rather than granted a search it did not ask for.

Scopes this server does not know (`launch/patient`, `openid`, v2 query parameters) do not
refuse the request: the token gets the scopes it may have, and the response names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import AccessDeniedError

AUDIT = "AuditEvent"
# v1 action -> the v2 permission letters it stands for.
ACTIONS = {"read": "rs", "write": "cud"}
V2_ORDER = "cruds"
_SCOPE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<permissions>read|write|\*|"
                    r"c?r?u?d?s?)$")


@dataclass(frozen=True)
class SystemScope:
    """One parsed system scope: a resource type (or `*`) and the v1 actions it grants."""

    resource_type: str
    actions: frozenset[str]
    version: int  # 1 or 2: which syntax the client wrote, so the answer uses it too

    def text(self) -> str:
        """The scope as a client reads it back, in the syntax it asked in."""
        if self.version == 1:
            (action,) = self.actions
            return f"system/{self.resource_type}.{action}"
        letters = "".join(ACTIONS[action] for action in sorted(self.actions))
        return f"system/{self.resource_type}.{''.join(c for c in V2_ORDER if c in letters)}"

    def v1(self) -> tuple[str, ...]:
        """The v1 scopes the rules read."""
        return tuple(f"system/{self.resource_type}.{action}" for action in sorted(self.actions))


def parse(scope: str) -> SystemScope | None:
    """A system scope, or None for one this server does not know (or a v2 query scope)."""
    match = _SCOPE.match(scope)
    if match is None or not match["permissions"]:
        return None
    resource_type, permissions = match["type"], match["permissions"]
    if permissions in ACTIONS:
        return SystemScope(resource_type, frozenset({permissions}), 1)
    if permissions == "*":  # SMART v1 `system/Patient.*`: read and write
        return SystemScope(resource_type, frozenset(ACTIONS), 2)
    actions = frozenset(a for a, letters in ACTIONS.items()
                        if all(letter in permissions for letter in letters))
    return SystemScope(resource_type, actions, 2) if actions else None


def v2(scope: str) -> str:
    """A v1 scope written in SMART v2 (`system/Patient.read` -> `system/Patient.rs`)."""
    parsed = parse(scope)
    if parsed is None:
        raise ValueError(f"{scope!r} is not a system scope")
    return SystemScope(parsed.resource_type, parsed.actions, 2).text()


def split(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Scopes from "a b", "a,b" or a list, without blanks or repeats, in order."""
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", value)
    return tuple(dict.fromkeys(s.strip() for s in items if s.strip()))


def covered(resource_type: str, action: str, held: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether v1 scopes `held` allow `action` on `resource_type` (exactly, or by `*`;
    AuditEvent is never covered by `*`: the audit trail needs its own scope)."""
    wildcard_ok = resource_type != AUDIT
    return (f"system/{resource_type}.{action}" in held
            or (wildcard_ok and f"system/*.{action}" in held))


def grant(requested: tuple[str, ...], held: tuple[str, ...]) -> tuple[SystemScope, ...]:
    """The requested scopes narrowed to what `held` (v1) allows; unknown scopes dropped.

    `system/*.read` asked by a client holding only `system/Patient.read` is not granted:
    a wildcard is granted only to a holder of the wildcard.
    """
    granted: list[SystemScope] = []
    for text in requested:
        scope = parse(text)
        if scope is None:
            continue
        allowed = frozenset(a for a in scope.actions
                            if covered(scope.resource_type, a, held))
        if scope.version == 1 and allowed != scope.actions:
            continue
        if allowed:
            granted.append(SystemScope(scope.resource_type, allowed, scope.version))
    return tuple(granted)


def as_v1(granted: tuple[str, ...] | list[str]) -> frozenset[str]:
    """The v1 scopes behind a token's `scope` claim (v1 or v2), for the rules to read."""
    return frozenset(v1 for text in granted if (scope := parse(text)) for v1 in scope.v1())


# --- SMART apps acting for a user (`user/` and `patient/` scopes, smart.py) ----------------

def app_allows(permissions: frozenset[str], resource_type: str, permission: str) -> bool:
    """Whether an app token's write permissions (`Type.c`, `*.u`) allow `permission` on
    `resource_type` (`*` never covers the audit trail)."""
    return (f"{resource_type}.{permission}" in permissions
            or (resource_type != AUDIT and f"*.{permission}" in permissions))


def require_app_permission(actor: Actor, resource_type: str, permission: str, *,
                           doing: str) -> None:
    """Refuse a SMART app's write that its token's scopes do not name; a user's own
    sign-in (no app) is not narrowed. The role was checked first: a scope never widens it.

    Raises:
        AccessDeniedError: 403, naming the scope the app would need.
    """
    if actor.app_writes is None or app_allows(actor.app_writes, resource_type, permission):
        return
    context = "patient" if actor.is_patient else "user"
    raise AccessDeniedError(
        f"this app's token has no scope to {doing} ({resource_type}, permission "
        f"{permission!r}); it needs {context}/{resource_type}.{permission}, which the user "
        "grants when launching the app")
