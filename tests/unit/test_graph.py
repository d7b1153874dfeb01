"""graph: the config checks of depends_on/groups (exact words) and the stack orderings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstlib_tasks.graph import CONDITIONS, Edge, Graph, UnknownTarget, group_problems, problems

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)


def deps(**spec: str) -> dict[str, list[Edge]]:
    """``deps(api="db cache", db="")`` -> name -> ready edges (underscores become '-')."""
    return {
        name.replace("_", "-"): [Edge(d, "ready") for d in text.split()]
        for name, text in spec.items()
    }


# =========================================================================== Edge


def test_conditions() -> None:
    assert CONDITIONS == ("started", "ready", "completed")


def test_edge_refuses_an_unknown_condition() -> None:
    with pytest.raises(ValueError, match="unknown condition 'redy'"):
        Edge("db", "redy")


# =========================================================================== problems


def test_no_problems() -> None:
    assert problems(deps(web="api", api="db", db="")) == {}
    assert problems({}) == {}


def test_unknown_session_with_suggestion() -> None:
    assert problems(deps(api="dbb", db="")) == {
        "api": "depends_on: unknown session 'dbb' (did you mean 'db'?)"
    }


def test_unknown_session_without_suggestion() -> None:
    assert problems(deps(api="postgres", db="")) == {
        "api": "depends_on: unknown session 'postgres'"
    }


def test_unknown_session_never_suggests_the_entry_itself() -> None:
    assert problems(deps(api="apii")) == {"api": "depends_on: unknown session 'apii'"}


def test_depends_on_itself() -> None:
    assert problems(deps(api="api")) == {"api": "depends_on: 'api' depends on itself"}


def test_two_session_cycle_each_from_itself() -> None:
    assert problems(deps(api="db", db="api")) == {
        "api": "depends_on: cycle api -> db -> api",
        "db": "depends_on: cycle db -> api -> db",
    }


def test_three_session_cycle_and_a_session_outside_it() -> None:
    found = problems(deps(web="api", api="db", db="cache", cache="api", ok=""))
    assert found == {
        "web": "depends_on: 'api' is invalid",
        "api": "depends_on: cycle api -> db -> cache -> api",
        "db": "depends_on: cycle db -> cache -> api -> db",
        "cache": "depends_on: cycle cache -> api -> db -> cache",
    }


def test_cycle_message_is_the_shortest_cycle_through_the_session() -> None:
    # a -> b -> c -> a and a -> c -> a: the short one is shown for a and c.
    found = problems(deps(a="b c", b="c", c="a"))
    assert found["a"] == "depends_on: cycle a -> c -> a"
    assert found["c"] == "depends_on: cycle c -> a -> c"
    assert found["b"] == "depends_on: cycle b -> c -> a -> b"


def test_dependency_refused_for_another_reason() -> None:
    found = problems(deps(api="db", web="api"), invalid=["db"])
    assert found == {
        "api": "depends_on: 'db' is invalid",
        "web": "depends_on: 'api' is invalid",
    }


def test_invalid_entries_get_no_second_message() -> None:
    assert problems(deps(db="nope", api=""), invalid=["db"]) == {}


def test_invalid_entries_are_suggested_too() -> None:
    assert problems(deps(api="dbb"), invalid=["db"]) == {
        "api": "depends_on: unknown session 'dbb' (did you mean 'db'?)"
    }


def test_transitive_invalid_names_the_direct_dependency() -> None:
    found = problems(deps(a="b", b="c", c="missing", d="a"))
    assert found == {
        "a": "depends_on: 'b' is invalid",
        "b": "depends_on: 'c' is invalid",
        "c": "depends_on: unknown session 'missing'",
        "d": "depends_on: 'a' is invalid",
    }


def test_first_problem_in_edge_order_wins() -> None:
    assert problems(deps(api="nope api")) == {"api": "depends_on: unknown session 'nope'"}
    assert problems(deps(api="api nope")) == {"api": "depends_on: 'api' depends on itself"}


def test_own_edge_problem_before_cycle() -> None:
    # api is on the cycle too, but its unknown dependency is the first thing to fix.
    found = problems(deps(api="missing db", db="api"))
    assert found == {
        "api": "depends_on: unknown session 'missing'",
        "db": "depends_on: cycle db -> api -> db",
    }


def test_cycle_before_invalid_dependency() -> None:
    found = problems(deps(api="bad db", db="api"), invalid=["bad"])
    assert found == {
        "api": "depends_on: 'bad' is invalid",
        "db": "depends_on: cycle db -> api -> db",
    }


def test_result_in_config_order() -> None:
    found = problems(deps(z="y", y="z", a="missing"))
    assert list(found) == ["z", "y", "a"]


def test_conditions_do_not_matter_to_problems() -> None:
    graph = {"api": [Edge("db", "completed")], "db": [Edge("api", "started")]}
    assert problems(graph) == {
        "api": "depends_on: cycle api -> db -> api",
        "db": "depends_on: cycle db -> api -> db",
    }


def test_long_chain_needs_no_deep_recursion() -> None:
    chain = {f"s{i}": [Edge(f"s{i + 1}", "ready")] for i in range(2000)}
    chain["s2000"] = [Edge("s0", "ready")]
    found = problems(chain)
    assert len(found) == 2001
    assert found["s0"].startswith("depends_on: cycle s0 -> s1 -> ")


def test_long_chain_to_an_unknown_session() -> None:
    chain = {f"s{i}": [Edge(f"s{i + 1}", "ready")] for i in range(3000)}
    chain["s3000"] = [Edge("missing", "ready")]
    found = problems(chain)
    assert found["s0"] == "depends_on: 's1' is invalid"
    assert found["s3000"] == "depends_on: unknown session 'missing'"
    assert len(found) == 3001


# =========================================================================== group_problems


def test_group_problems() -> None:
    groups = {"api": ["backend", "db"], "db": ["data"], "web": ["db"], "cache": []}
    assert group_problems(groups, ["api", "db", "web", "cache"]) == {
        "api": "groups: 'db' is also a session name",
        "web": "groups: 'db' is also a session name",
    }


def test_group_problems_none() -> None:
    assert group_problems({"api": ["backend"]}, {"api"}) == {}


# =========================================================================== Graph


def stack() -> Graph:
    return Graph(
        {
            "web": [Edge("api", "ready"), Edge("assets", "completed")],
            "api": [Edge("db", "ready"), Edge("cache", "started")],
            "db": [],
            "cache": [],
            "assets": [],
            "docs": [],
        },
        {"web": ["front"], "api": ["back"], "db": ["back", "data"], "cache": ["back"]},
    )


def test_graph_refuses_a_broken_graph() -> None:
    with pytest.raises(ValueError, match=r"session 'api': depends_on: unknown session 'db'"):
        Graph(deps(api="db"))
    with pytest.raises(ValueError, match="cycle"):
        Graph(deps(a="b", b="a"))


def test_names_and_groups() -> None:
    graph = stack()
    assert graph.names == ("web", "api", "db", "cache", "assets", "docs")
    assert graph.groups == {"front": ("web",), "back": ("api", "db", "cache"), "data": ("db",)}


def test_dependencies_and_dependents() -> None:
    graph = stack()
    assert graph.dependencies("web") == (Edge("api", "ready"), Edge("assets", "completed"))
    assert graph.dependencies("db") == ()
    assert graph.dependents("db") == ("api",)
    assert graph.dependents("api") == ("web",)
    assert graph.dependents("web") == ()


def test_dependents_in_config_order_and_once() -> None:
    graph = Graph(
        {"b": [Edge("a", "ready"), Edge("a", "started")], "a": [], "c": [Edge("a", "ready")]}
    )
    assert graph.dependents("a") == ("b", "c")


def test_resolve() -> None:
    graph = stack()
    assert graph.resolve([]) == ["web", "api", "db", "cache", "assets", "docs"]
    assert graph.resolve(["db"]) == ["db"]
    assert graph.resolve(["back"]) == ["api", "db", "cache"]
    assert graph.resolve(["docs", "back", "db", "front", "docs"]) == [
        "docs", "api", "db", "cache", "web",
    ]


def test_resolve_unknown_target() -> None:
    with pytest.raises(UnknownTarget) as info:
        stack().resolve(["db", "bakc"])
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.target, err.suggestion) == ("bakc", "back")
    assert str(err) == "no session or group named 'bakc' (did you mean 'back'?)"


def test_unknown_target_without_suggestion() -> None:
    with pytest.raises(UnknownTarget) as info:
        stack().resolve(["zzz"])
    assert str(info.value) == "no session or group named 'zzz'"
    assert info.value.suggestion is None


def test_methods_refuse_unknown_names() -> None:
    graph = stack()
    for call in (graph.dependencies, graph.dependents):
        with pytest.raises(UnknownTarget):
            call("nope")
    with pytest.raises(UnknownTarget):
        graph.up_order(["nope"])
    with pytest.raises(UnknownTarget):
        graph.down_order(["nope"])


def test_up_order() -> None:
    graph = stack()
    assert graph.up_order(["web"]) == ["db", "cache", "api", "assets", "web"]
    assert graph.up_order(["api"]) == ["db", "cache", "api"]
    assert graph.up_order(["db", "docs"]) == ["db", "docs"]
    assert graph.up_order([]) == []
    assert graph.up_order(graph.resolve([])) == ["db", "cache", "api", "assets", "web", "docs"]


def test_down_order() -> None:
    graph = stack()
    assert graph.down_order(["db"]) == ["web", "api", "db"]
    assert graph.down_order(["cache", "assets"]) == ["web", "assets", "api", "cache"]
    assert graph.down_order(["web"]) == ["web"]
    assert graph.down_order(graph.resolve([])) == ["docs", "web", "assets", "api", "cache", "db"]


def test_up_ties_follow_config_order() -> None:
    graph = Graph(deps(c="", a="", b=""))
    assert graph.up_order(["a", "b", "c"]) == ["c", "a", "b"]
    assert graph.down_order(["a", "b", "c"]) == ["b", "a", "c"]


def test_diamond() -> None:
    graph = Graph(deps(top="left right", left="base", right="base", base=""))
    assert graph.up_order(["top"]) == ["base", "left", "right", "top"]
    assert graph.down_order(["base"]) == ["top", "right", "left", "base"]


def test_graph_copies_its_input() -> None:
    spec = deps(api="db", db="")
    graph = Graph(spec)
    spec["api"].clear()
    assert graph.dependencies("api") == (Edge("db", "ready"),)


# =========================================================================== properties


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[Edge]]:
    """Random acyclic graphs (each session may depend only on sessions defined before it),
    written in a shuffled config order."""
    count = draw(st.integers(1, 12))
    names = [f"s{i}" for i in range(count)]
    graph = {
        name: [Edge(d, "ready") for d in draw(st.lists(st.sampled_from(names[:i]), unique=True))]
        if i else []
        for i, name in enumerate(names)
    }
    order = draw(st.permutations(names))
    return {name: graph[name] for name in order}


def closure(graph: dict[str, list[Edge]], names: list[str], down: bool) -> set[str]:
    result: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in result:
            continue
        result.add(name)
        if down:
            todo.extend(n for n, edges in graph.items() if any(e.name == name for e in edges))
        else:
            todo.extend(e.name for e in graph[name])
    return result


@FAST
@given(dags(), st.data())
def test_up_order_is_a_valid_plan(graph: dict[str, list[Edge]], data: st.DataObject) -> None:
    assert problems(graph) == {}
    targets = data.draw(st.lists(st.sampled_from(list(graph)), max_size=4))
    order = Graph(graph).up_order(targets)
    assert set(order) == closure(graph, targets, down=False)
    assert len(order) == len(set(order))
    position = {name: i for i, name in enumerate(order)}
    for name in order:
        assert all(position[e.name] < position[name] for e in graph[name])


@FAST
@given(dags(), st.data())
def test_down_order_is_a_valid_plan(graph: dict[str, list[Edge]], data: st.DataObject) -> None:
    targets = data.draw(st.lists(st.sampled_from(list(graph)), max_size=4))
    order = Graph(graph).down_order(targets)
    assert set(order) == closure(graph, targets, down=True)
    position = {name: i for i, name in enumerate(order)}
    for name in order:
        assert all(position[e.name] > position[name] for e in graph[name] if e.name in position)


@FAST
@given(dags(), st.data())
def test_a_back_edge_makes_a_cycle(graph: dict[str, list[Edge]], data: st.DataObject) -> None:
    """Adding an edge from a dependency back to its dependent always yields cycle messages."""
    with_deps = [n for n, edges in graph.items() if edges]
    if not with_deps:
        return
    name = data.draw(st.sampled_from(with_deps))
    target = graph[name][0].name
    broken = {**graph, target: [*graph[target], Edge(name, "ready")]}
    found = problems(broken)
    assert found[name].startswith(f"depends_on: cycle {name} -> {target} -> ")
    assert found[target] == f"depends_on: cycle {target} -> {name} -> {target}"
    assert problems(broken) == found  # deterministic
