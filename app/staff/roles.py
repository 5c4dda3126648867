"""Who may open which staff page.

``roles_required(*roles)`` is the one guard: an anonymous visitor is sent to sign in, a signed-in
supporter without one of the roles gets 403, an admin passes everywhere. The decorator also
records the roles on the view (``view.allowed_roles``), so the route-walk test and the pages can
read them from one place.

Granting and revoking go through :func:`grant_role` and :func:`revoke_role`, which write the
audit log in the caller's transaction.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, Response, abort, g
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.accounts.models import Supporter
from app.audit import Actor
from app.db import utcnow
from app.extensions import db, login_manager
from app.staff.models import Role, StaffRole

FUNDRAISING = (Role.FUNDRAISER,)
FINANCE = (Role.FINANCE,)
ADMIN = (Role.ADMIN,)
ALL_STAFF = (Role.FUNDRAISER, Role.FINANCE, Role.ADMIN)


def roles_of(supporter_id: int) -> frozenset[Role]:
    return frozenset(db.session.scalars(
        select(StaffRole.role).where(StaffRole.supporter_id == supporter_id)))


def current_roles() -> frozenset[Role]:
    """The signed-in supporter's roles, read once per request."""
    if not current_user.is_authenticated:
        return frozenset()
    if "staff_roles" not in g:
        g.staff_roles = roles_of(current_user.id)
    return g.staff_roles


def allows(held: frozenset[Role], allowed) -> bool:
    return Role.ADMIN in held or bool(held & frozenset(allowed))


def roles_required(*roles: Role | str):
    """Only supporters holding one of ``roles`` (or admin) may open the view."""
    allowed = frozenset(Role(r) for r in roles)
    if not allowed:
        raise ValueError("roles_required needs at least one role")

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not allows(current_roles(), allowed):
                abort(403)
            return view(*args, **kwargs)

        guarded.allowed_roles = allowed
        return guarded

    return decorate


class RoleError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def grant_role(supporter: Supporter, role: Role, *, actor: Actor) -> bool:
    """Give ``supporter`` the role; False when they already hold it."""
    role = Role(role)
    if supporter.erased_at is not None:
        raise RoleError("An erased supporter cannot be given a role.")
    before = sorted(roles_of(supporter.id))
    if role in before:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(StaffRole(supporter_id=supporter.id, role=role, granted_at=utcnow(),
                                     granted_by_id=actor.id))
    except IntegrityError:  # granted concurrently
        return False
    audit.record(actor_id=actor.id, actor_label=actor.label, action="role.grant",
                 target_type="supporter", target_id=supporter.id,
                 before={"email": supporter.email, "roles": before},
                 after={"email": supporter.email, "roles": sorted({*before, role})})
    return True


def revoke_role(supporter: Supporter, role: Role, *, actor: Actor) -> bool:
    """Take the role away; False when they did not hold it. The last admin stays: someone must
    be able to grant roles."""
    role = Role(role)
    row = db.session.scalar(select(StaffRole).where(StaffRole.supporter_id == supporter.id,
                                                    StaffRole.role == role))
    if row is None:
        return False
    if role is Role.ADMIN:
        admins = db.session.scalars(select(StaffRole.supporter_id)
                                    .where(StaffRole.role == Role.ADMIN)).all()
        if admins == [supporter.id]:
            raise RoleError("This is the last administrator; grant the role to someone else "
                            "first.")
    before = sorted(roles_of(supporter.id))
    db.session.delete(row)
    db.session.flush()
    audit.record(actor_id=actor.id, actor_label=actor.label, action="role.revoke",
                 target_type="supporter", target_id=supporter.id,
                 before={"email": supporter.email, "roles": before},
                 after={"email": supporter.email, "roles": sorted(set(before) - {role})})
    return True


def staff_members() -> list[tuple[Supporter, list[StaffRole]]]:
    """Everyone holding a role, with their grants, by email."""
    rows = db.session.scalars(select(StaffRole).join(Supporter, Supporter.id ==
                                                     StaffRole.supporter_id)
                              .order_by(Supporter.email, StaffRole.role)).all()
    grouped: dict[int, tuple[Supporter, list[StaffRole]]] = {}
    for row in rows:
        grouped.setdefault(row.supporter_id, (row.supporter, []))[1].append(row)
    return list(grouped.values())


def staff_pages(bp: Blueprint) -> Blueprint:
    """What every blueprint of staff pages (staff, finance, operations) shares: their answers
    hold donors' data and money, so no browser or proxy keeps them; their templates
    (templates/staff/_staff.html) get the roles whose pages the nav shows."""

    @bp.after_request
    def private(response: Response) -> Response:
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @bp.context_processor
    def staff_context():
        return {"staff_roles": current_roles(), "Role": Role}

    return bp
