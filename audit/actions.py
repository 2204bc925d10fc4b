"""The type of every audit action name: each app declares its own actions once, as a subclass."""

from enum import StrEnum


class AuditAction(StrEnum):
    """An action name an audit record stores (its value); each app subclasses it with its members.

    The audit app itself records no action of its own: it stores what the other apps declare.
    """
