"""The entity budget of one response: nested $expand pages are cut, never the data.

Pure tests of :func:`api.sta.translate.fit_budget` through the translator, then the API with a
small budget on the sample data: every response stays within it, and following the next links
(the page's and each expanded collection's) yields exactly what an unbudgeted server returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.sta.odata.parser import QueryError, parse_query_options
from api.sta.translate import Limits, PathStep, Query, ServerFeatures, Translator
from tests.api.conftest import BASE, ROOT


def collection(limits: Limits, steps: list[PathStep], **options: str) -> Query:
    return Translator(ServerFeatures(), limits).collection(
        steps, parse_query_options(list(options.items())), "http://x/v1.1"
    )


def tops(query: Query) -> dict[str, int]:
    """Each expansion's page size, by its path."""
    out: dict[str, int] = {}

    def walk(plan: Any, prefix: str) -> None:
        for name, e in plan.expands.items():
            out[prefix + name] = e.top
            walk(e.plan, prefix + name + "/")

    walk(query.plan, "")
    return out


DEFAULT = Limits(100, 10_000, 100_000)


def test_the_page_is_cut_first_and_the_expansions_keep_their_top() -> None:
    query = collection(DEFAULT, [PathStep("Datastreams")], **{"$top": "10000", "$expand": "Observations($top=10000)"})
    assert query.top == 9  # 9 x (1 + 10000) entities fit in 100 000
    assert tops(query) == {"Observations": 10_000}
    # the statement asks for the cut page (one row more, for the next link)
    assert 10 in query.params.values() and 10_001 not in query.params.values()


def test_within_the_budget_nothing_changes() -> None:
    query = collection(DEFAULT, [PathStep("Datastreams")], **{"$top": "1000", "$expand": "Observations($top=1)"})
    assert query.top == 1000 and tops(query) == {"Observations": 1}
    query = collection(DEFAULT, [PathStep("Things")], **{"$expand": "Datastreams($expand=Observations)"})
    assert query.top == 9 and tops(query) == {"Datastreams": 100, "Datastreams/Observations": 100}


def test_one_entity_over_the_budget_cuts_the_outermost_expansion_first() -> None:
    limits = Limits(100, 10_000, 50)
    expand = "Datastreams($top=10;$expand=Observations($top=10),Sensor),Locations($top=5)"
    query = collection(limits, [PathStep("Things")], **{"$expand": expand})
    # a Thing would be 1 + 10 x (1 + 10 + 1) + 5 = 126: one Thing per page, then Datastreams 3 (1 + 36 + 5 = 42),
    # the rest as asked
    assert query.top == 1
    assert tops(query) == {"Datastreams": 3, "Datastreams/Observations": 10, "Datastreams/Sensor": 1, "Locations": 5}
    single = Translator(ServerFeatures(), limits).entity(
        [PathStep("Things", 1)], parse_query_options([("$expand", expand)]), "http://x/v1.1"
    )
    assert tops(single) == tops(query)


def test_inner_levels_are_cut_when_the_outer_ones_are_at_one() -> None:
    limits = Limits(100, 10_000, 20)
    query = collection(limits, [PathStep("Things")], **{"$expand": "Datastreams($expand=Observations)"})
    assert query.top == 1 and tops(query) == {"Datastreams": 1, "Datastreams/Observations": 18}


def test_an_expansion_that_cannot_fit_is_a_400_that_says_what_to_do() -> None:
    limits = Limits(100, 10_000, 3)
    with pytest.raises(QueryError) as info:
        collection(limits, [PathStep("Things")], **{"$expand": "Datastreams($expand=Observations),Locations"})
    assert info.value.parameter == "$expand"
    assert "at least 4 entities for each Thing" in info.value.message
    assert "at most 3" in info.value.message and "expand fewer" in info.value.message
    # $top=0 builds nothing, whatever it expands
    assert collection(limits, [PathStep("Things")], **{"$top": "0", "$expand": "Datastreams,Locations"}).top == 0


# ---- through the API --------------------------------------------------------------------------------

BUDGET = 20


@pytest.fixture(scope="module")
def budgeted(sta_full_db: str) -> Iterator[TestClient]:
    app = create_app(sta_full_db, pool_min=1, pool_max=2, public_url=BASE, max_entities=BUDGET)
    with TestClient(app, base_url=BASE) as client:
        yield client


def entities(body: Any) -> int:
    """Entities in a response: every object with a self link."""
    if isinstance(body, list):
        return sum(entities(x) for x in body)
    if isinstance(body, dict):
        return ("@iot.selfLink" in body) + sum(entities(v) for v in body.values())
    return 0


def pages(client: TestClient, url: str, seen: list[int]) -> list[dict[str, Any]]:
    """Every entity of a collection, following next links (bounded)."""
    out: list[dict[str, Any]] = []
    for _ in range(100):
        response = client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.append(entities(page))
        out += page["value"]
        if "@iot.nextLink" not in page:
            return out
        url = page["@iot.nextLink"]
    pytest.fail("more than 100 pages")


def expanded(client: TestClient, entity: dict[str, Any], nav: str, seen: list[int]) -> list[dict[str, Any]]:
    items = list(entity.get(nav, []))
    if f"{nav}@iot.nextLink" in entity:
        items += pages(client, entity[f"{nav}@iot.nextLink"], seen)
    return items


def tree(client: TestClient, seen: list[int]) -> dict[int, dict[int, list[int]]]:
    things = pages(client, ROOT + "/Things?$expand=Datastreams($expand=Observations)", seen)
    return {
        t["@iot.id"]: {
            d["@iot.id"]: [o["@iot.id"] for o in expanded(client, d, "Observations", seen)]
            for d in expanded(client, t, "Datastreams", seen)
        }
        for t in things
    }


def test_following_next_links_under_a_budget_yields_everything(budgeted: TestClient, full: TestClient) -> None:
    seen: list[int] = []
    cut = tree(budgeted, seen)
    unbudgeted: list[int] = []
    whole = tree(full, unbudgeted)
    assert cut == whole
    assert sum(len(obs) for ds in whole.values() for obs in ds.values()) == 31  # the sample's Observations
    assert max(seen) == BUDGET and len(seen) > 3  # full pages, and several of them
    assert unbudgeted == [38]  # one response without a budget: 3 Things, 4 Datastreams, 31 Observations


def test_a_request_that_cannot_fit_gets_the_standard_error(budgeted: TestClient) -> None:
    # at least 1 + 8 + 6 + 6 = 21 entities per Thing, even with one per expanded collection
    expand = (
        "Datastreams($expand=Thing($expand=Locations),Sensor,ObservedProperty,"
        "Observations($expand=FeatureOfInterest,Datastream)),"
        "Locations($expand=Things($expand=Datastreams($expand=Thing,Sensor,ObservedProperty))),"
        "HistoricalLocations($expand=Thing($expand=Datastreams($expand=Thing,Sensor,ObservedProperty)))"
    )
    response = budgeted.get(ROOT + "/Things", params={"$expand": expand})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "bad_request" and error["parameter"] == "$expand" and error["column"] is None
    assert error["message"] == (
        f"this $expand builds at least 21 entities for each Thing, and one response holds at most {BUDGET}:"
        " expand fewer collections or levels"
    )
    # one level less fits: served, within the budget
    response = budgeted.get(ROOT + "/Things", params={"$expand": expand.replace("Thing($expand=Locations)", "Thing")})
    assert response.status_code == 200 and entities(response.json()) <= BUDGET
