"""Which sessions a stack command touches, and in which order.

Two halves, on purpose. :func:`problems` and :func:`group_problems` look at the whole config
and say, in config order and with stable words, why an entry cannot be used (an unknown
dependency, a cycle, a dependency that is itself refused): the config loader turns each into
one warning and drops the entry, as it does for any invalid value. :class:`Graph` is then built
from the usable entries only, so its orderings never have to cope with a broken graph.

Every ordering breaks ties by config order, so ``up`` starts sessions in the order the user
wrote them whenever the dependencies leave a choice, and two runs print the same plan.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from .models import CONDITIONS, Edge

__all__ = ["CONDITIONS", "Edge", "Graph", "UnknownTarget", "group_problems", "problems"]
from .suggest import closest, did_you_mean

_Step = Callable[[str], Iterable[str]]


class UnknownTarget(ValueError):
    """A name on the command line that is neither a session nor a group."""

    def __init__(self, target: str, suggestion: str | None = None):
        self.target = target
        self.suggestion = suggestion
        hint = f" (did you mean {suggestion!r}?)" if suggestion is not None else ""
        super().__init__(f"no session or group named {target!r}{hint}")


# --------------------------------------------------------------------------- config checks


def problems(
    deps: Mapping[str, Sequence[Edge]], *, invalid: Collection[str] = ()
) -> dict[str, str]:
    """Why each entry of ``deps`` cannot be used, in config order; usable entries are absent.

    ``invalid`` names entries already refused for another reason (a bad value): depending on
    one is a problem, and they get no second message here. For one entry the first problem
    wins, in this order: its own edges in the order written (itself, an unknown name, an
    invalid name), then being on a cycle, then depending on an entry refused by any of these
    rules (transitively, naming the direct dependency so the user can follow the chain).
    """
    refused = set(invalid)
    names = [name for name in deps if name not in refused]
    known = set(names)
    found: dict[str, str] = {}
    for name in names:
        reason = _edge_problem(name, deps[name], known, refused)
        if reason:
            found[name] = reason
    cycles = _cycles({n: [e.name for e in deps[n] if e.name in known and e.name != n]
                      for n in names})
    for name in names:
        if name not in found and name in cycles:
            found[name] = f"depends_on: cycle {' -> '.join(cycles[name])}"
    # What remains is acyclic (every cycle was caught above), so a memoised walk ends; it keeps
    # its own stack so that a long chain cannot reach the recursion limit.
    bad = refused | set(found)
    memo: dict[str, bool] = {}

    def broken(start: str) -> bool:
        todo = [start]
        while todo:
            name = todo[-1]
            if name in bad or name in memo:
                todo.pop()
                continue
            pending = [e.name for e in deps[name] if e.name not in bad and e.name not in memo]
            if pending:
                todo.extend(pending)
                continue
            memo[name] = any(e.name in bad or memo[e.name] for e in deps[name])
            todo.pop()
        return start in bad or memo[start]

    for name in names:
        if name not in found:
            culprit = next((e.name for e in deps[name] if broken(e.name)), None)
            if culprit is not None:
                found[name] = f"depends_on: {culprit!r} is invalid"
    return {name: found[name] for name in names if name in found}


def _edge_problem(
    name: str, edges: Sequence[Edge], known: Collection[str], refused: Collection[str]
) -> str | None:
    found = edge_problems(name, edges, known, refused)
    return found[0] if found else None


def edge_problems(
    name: str, edges: Sequence[Edge], known: Collection[str], refused: Collection[str]
) -> list[str]:
    """Every problem of one entry's own edges, in the order written (``check`` lists them
    all; the warning gives the first)."""
    found = []
    for edge in edges:
        if edge.name == name:
            found.append(f"depends_on: {name!r} depends on itself")
        elif edge.name in refused:
            found.append(f"depends_on: {edge.name!r} is invalid")
        elif edge.name not in known:
            others = [n for n in (*known, *refused) if n != name]
            found.append(f"depends_on: unknown session {edge.name!r}"
                         f"{did_you_mean(edge.name, others)}")
    return found


def _cycles(adjacent: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each node on a cycle, the shortest cycle through it, written from itself.

    Tarjan's strongly connected components (iterative: a long chain must not hit the recursion
    limit), then a breadth-first search inside each component, neighbours in the order written.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in adjacent:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = adjacent[node]
            if position < len(successors):
                work.append((node, position + 1))
                nxt = successors[position]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    result: dict[str, list[str]] = {}
    for component in components:
        for start in component:
            result[start] = _shortest_cycle(start, adjacent, component)
    return result


def _shortest_cycle(
    start: str, adjacent: Mapping[str, Sequence[str]], component: Collection[str]
) -> list[str]:
    previous: dict[str, str] = {}
    queue = [start]
    for node in queue:  # the list grows while it is read: a breadth-first search
        for nxt in adjacent[node]:
            if nxt not in component:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start!r} is in a strongly connected component without a cycle")


def group_problems(groups: Mapping[str, Sequence[str]], names: Collection[str]) -> dict[str, str]:
    """Entries (``session -> its groups``) listing a group that a session name already takes.

    Refused rather than resolved by a rule: ``up db`` must not mean two things depending on
    which one the reader remembers.
    """
    found: dict[str, str] = {}
    for session, listed in groups.items():
        clash = next((g for g in listed if g in names), None)
        if clash is not None:
            found[session] = f"groups: {clash!r} is also a session name"
    return found


# --------------------------------------------------------------------------- the graph


class Graph:
    """The usable sessions (built from entries :func:`problems` did not refuse).

    ``deps`` maps each session to its edges and ``groups`` each session to the groups it
    belongs to; the key order of ``deps`` is the config order every tie follows. Names passed to
    the methods must be sessions of the graph (:class:`UnknownTarget` otherwise).
    """

    def __init__(
        self, deps: Mapping[str, Sequence[Edge]], groups: Mapping[str, Sequence[str]] | None = None
    ):
        found = problems(deps)
        if found:
            name, reason = next(iter(found.items()))
            raise ValueError(f"session {name!r}: {reason} (build the graph from valid entries)")
        self._order = {name: i for i, name in enumerate(deps)}
        self._deps = {name: tuple(edges) for name, edges in deps.items()}
        dependents: dict[str, list[str]] = {name: [] for name in deps}
        for name, edges in self._deps.items():
            for edge in edges:
                if name not in dependents[edge.name]:
                    dependents[edge.name].append(name)
        self._dependents = {name: tuple(names) for name, names in dependents.items()}
        self._groups: dict[str, list[str]] = {}
        for name in deps:
            for group in (groups or {}).get(name, ()):
                members = self._groups.setdefault(group, [])
                if name not in members:
                    members.append(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Every session, in config order."""
        return tuple(self._order)

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Every group with its members, both in config order."""
        return {group: tuple(members) for group, members in self._groups.items()}

    def dependencies(self, name: str) -> tuple[Edge, ...]:
        """The edges ``name`` waits for, as written."""
        return self._deps[self._known(name)]

    def dependents(self, name: str) -> tuple[str, ...]:
        """The sessions listing ``name`` directly, in config order."""
        return self._dependents[self._known(name)]

    def resolve(self, targets: Sequence[str]) -> list[str]:
        """Command-line targets (sessions or groups) to sessions; no target means all of them."""
        if not targets:
            return list(self._order)
        result: dict[str, None] = {}
        for target in targets:
            if target in self._order:
                result[target] = None
            elif target in self._groups:
                result.update(dict.fromkeys(self._groups[target]))
            else:
                raise self._unknown(target)
        return list(result)

    def up_order(self, names: Iterable[str]) -> list[str]:
        """``names`` and everything they need, each after all it depends on."""
        wanted = self._closure(names, lambda n: (e.name for e in self._deps[n]))
        return self._sorted(wanted, lambda n: [e.name for e in self._deps[n]])

    def down_order(self, names: Iterable[str]) -> list[str]:
        """``names`` and everything that needs them, each before all it depends on.

        Exactly the reverse of the order ``up`` would use for the same sessions, so a stack
        comes down the way it went up (ties in reverse config order, like compose).
        """
        wanted = self._closure(names, lambda n: self._dependents[n])
        return self._sorted(wanted, lambda n: [e.name for e in self._deps[n]])[::-1]

    # ----------------------------------------------------------------------- helpers

    def _known(self, name: str) -> str:
        if name not in self._order:
            raise self._unknown(name)
        return name

    def _unknown(self, target: str) -> UnknownTarget:
        return UnknownTarget(target, closest(target, [*self._order, *self._groups]))

    def _closure(self, names: Iterable[str], step: _Step) -> set[str]:
        seen: set[str] = set()
        todo = [self._known(n) for n in names]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(step(name))
        return seen

    def _sorted(self, wanted: Collection[str], before: _Step) -> list[str]:
        """Kahn's algorithm restricted to ``wanted``; the ready session first in config order."""
        waiting = {n: {d for d in before(n) if d in wanted} for n in wanted}
        blocks: dict[str, list[str]] = {n: [] for n in wanted}
        for name, needs in waiting.items():
            for need in needs:
                blocks[need].append(name)
        ready = [(self._order[n], n) for n, needs in waiting.items() if not needs]
        heapq.heapify(ready)
        result: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            result.append(name)
            for blocked in blocks[name]:
                waiting[blocked].discard(name)
                if not waiting[blocked]:
                    heapq.heappush(ready, (self._order[blocked], blocked))
        return result
