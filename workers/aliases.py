"""Aliases: names that mean the same organisation (AWS ⇄ Amazon Web Services), for search and subscriptions.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}aliases        HASH  name key of a group's first name → JSON list of the group's names (no expiry)

A group is a list of display names; a query term whose key (`workers.terms.name_key`) is any name of a group
matches every name of the group. A few groups are built in (`BUILTIN`); `lobbybot alias add NAME ALIAS…`
adds more. Adding a name that already belongs to a group merges the groups, so an alias never has two meanings.

How it fails: `add` raises `ValueError` when a name holds no word (it could never match anything).
"""

from __future__ import annotations

import json

from redis import Redis
from redis.exceptions import WatchError

from workers.terms import Term, name_key

BUILTIN: tuple[tuple[str, ...], ...] = (
    ("Amazon Web Services", "AWS"),
    ("Hydro-Québec", "HQ"),
    ("Innovation, Science and Economic Development Canada", "ISED", "Innovation, Sciences et Développement "
     "économique Canada", "ISDE"),
    ("Treasury Board of Canada Secretariat", "TBS", "Secrétariat du Conseil du Trésor du Canada", "SCT"),
    ("Privy Council Office", "PCO", "Bureau du Conseil privé", "BCP"),
    ("Prime Minister's Office", "PMO", "Cabinet du Premier ministre", "CPM"),
    ("Canada Revenue Agency", "CRA", "Agence du revenu du Canada", "ARC"),
)


class AliasStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}aliases"

    def stored(self) -> list[list[str]]:
        """The groups added with `add` (not the built-in ones)."""
        return [json.loads(raw) for raw in self.redis.hvals(self.key)]  # type: ignore[union-attr,unused-ignore]

    def groups(self) -> list[list[str]]:
        """Every group, built-in ones first; a stored group that overlaps a built-in one extends it."""
        merged: list[list[str]] = []
        for group in [list(g) for g in BUILTIN] + self.stored():
            keys = {name_key(name) for name in group}
            overlapping = [g for g in merged if keys & {name_key(name) for name in g}]
            target = overlapping[0] if overlapping else []
            for other in overlapping[1:]:
                target.extend(other)
                merged.remove(other)
            target[:] = _distinct(target + group)
            if not overlapping:
                merged.append(target)
        return merged

    def expansions(self) -> dict[str, list[str]]:
        """Name key → every name of its group (the name itself included)."""
        out: dict[str, list[str]] = {}
        for group in self.groups():
            for name in group:
                out[name_key(name)] = group
        return out

    def add(self, name: str, aliases: list[str]) -> list[str]:
        """Make `aliases` mean `name`; return the whole group now stored."""
        names = [name, *aliases]
        empty = [n for n in names if not name_key(n)]
        if empty:
            raise ValueError(f"{empty[0]!r} holds no letter or digit, so it could never match")
        keys = {name_key(n) for n in names}
        with self.redis.pipeline() as pipe:  # optimistic lock: two concurrent adds never lose a group
            while True:
                try:
                    pipe.watch(self.key)
                    stored = {_text(field): json.loads(raw) for field, raw in pipe.hgetall(self.key).items()}
                    group: list[str] = []
                    doomed = []
                    for field, other in stored.items():
                        if keys & {name_key(n) for n in other}:
                            group.extend(other)  # an existing group keeps its first name
                            doomed.append(field)
                    group = _distinct(group + names)
                    pipe.multi()
                    if doomed:
                        pipe.hdel(self.key, *doomed)
                    pipe.hset(self.key, name_key(group[0]), json.dumps(group, ensure_ascii=False))
                    pipe.execute()
                    return group
                except WatchError:
                    continue


def _distinct(names: list[str]) -> list[str]:
    """`names` without a second spelling of the same key, first spelling kept."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name_key(name), name)
    return list(seen.values())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def forms(term: Term, expansions: dict[str, list[str]]) -> list[Term]:
    """The term and, when it names an alias group (`AliasStore.expansions()`), every other name of the group."""
    names = expansions.get(term.key) or expansions.get(name_key(term.raw))
    if not names:
        return [term]
    others = [Term.parse(name) for name in names]
    return [term, *(other for other in others if not other.empty and other.key != term.key)]
