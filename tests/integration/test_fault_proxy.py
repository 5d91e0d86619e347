"""The fault proxy injects what it says, over real HTTP, in front of the fake Notion."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from esl_build.testing.fake_notion import FakeNotion
from esl_build.testing.fault_proxy import FaultProxy


@pytest.fixture
def notion() -> Iterator[FakeNotion]:
    with FakeNotion() as fake:
        yield fake


def create_page(proxy: FaultProxy, notion: FakeNotion) -> http.client.HTTPResponse:
    target = urlsplit(proxy.url)
    connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=5)
    body = json.dumps({"parent": {"data_source_id": notion.data_source_id}, "properties": {
        "Name": {"title": [{"text": {"content": "Lesson"}}]}}})
    connection.request("POST", "/v1/pages", body, {
        "Authorization": f"Bearer {notion.token}", "Notion-Version": "2025-09-03",
        "Content-Type": "application/json"})
    return connection.getresponse()


def test_a_lost_write_is_applied_upstream_and_answered_502(notion: FakeNotion) -> None:
    with FaultProxy(notion.base_url, rate=1.0, faults=("lost",)) as proxy:
        assert create_page(proxy, notion).status == 502
        assert len(notion.pages()) == 1
        assert [r.forwarded and not r.answered for r in proxy.requests] == [True]
        assert proxy.injected() == {"lost": 1}


def test_a_429_carries_retry_after_and_is_not_forwarded(notion: FakeNotion) -> None:
    with FaultProxy(notion.base_url, rate=1.0, faults=("429",), retry_after="3") as proxy:
        answer = create_page(proxy, notion)
        assert (answer.status, answer.getheader("Retry-After")) == (429, "3")
        assert notion.pages() == [] and notion.requests == []


def test_a_dropped_connection_has_no_answer(notion: FakeNotion) -> None:
    with FaultProxy(notion.base_url, rate=1.0, faults=("drop",), seed=3) as proxy:
        for _ in range(4):
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
                create_page(proxy, notion)
        assert {r.answered for r in proxy.requests} == {False}


def test_without_faults_it_passes_everything_and_a_trigger_fires_on_the_kth(
        notion: FakeNotion) -> None:
    fired: list[int] = []
    with FaultProxy(notion.base_url) as proxy:
        proxy.trigger(lambda r: r.method == "POST", 2, lambda: fired.append(1), after=True)
        assert create_page(proxy, notion).status == 200
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            create_page(proxy, notion)  # applied, then the answer withheld
        assert fired == [1] and proxy.fired() and len(notion.pages()) == 2
        assert create_page(proxy, notion).status == 200
