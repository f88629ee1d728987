"""Grouping rules on synthetic messages: masks, fingerprint layers, template thresholds, must- and cannot-links."""

from __future__ import annotations

from domain.patterns.grouping import Grouper, MatchMethod, Policy, Signal
from domain.patterns.normalize import mask
from domain.patterns.similar import SimilarIndex, terms


def test_masks_variable_parts_but_keeps_words() -> None:
    text = ("user ann.lee@example.com from 10.1.2.3:8080 at 2026-03-01T10:11:12Z req "
            "550e8400-e29b-41d4-a716-446655440000 sha deadbeefcafe1234 path /var/log/app.log "
            "url https://api.example.com/v1/x?id=7 took 250ms job_42 0x1f db.internal:5432")
    assert mask(text) == "user <*> from <*> at <*> req <*> sha <*> path <*> url <*> took <*>"


def test_value_lists_and_restated_values_collapse() -> None:
    assert mask("sent 1190 bytes (1.16 KB), ids 1 2 3 4") == "sent <*>, ids <*>"


def _signal(key: str, text: str, **kw: str) -> Signal:
    return Signal(key=key, text=text, service="api", **kw)  # type: ignore[arg-type]


def test_same_masked_text_same_pattern_by_fingerprint() -> None:
    grouper = Grouper()
    first = grouper.assign(_signal("a", "Timeout after 30s calling billing for order 1234"))
    second = grouper.assign(_signal("b", "Timeout after 12s calling billing for order 99"))
    assert first.created and first.method == MatchMethod.NEW
    assert second.pattern_key == "a" and second.method == MatchMethod.FINGERPRINT and second.similarity == 1.0


def test_scope_separates_identical_text() -> None:
    grouper = Grouper()
    grouper.assign(Signal(key="a", text="connection refused", service="api"))
    other = grouper.assign(Signal(key="b", text="connection refused", service="worker"))
    assert other.pattern_key == "b"


def test_client_fingerprint_wins() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "disk full on node", client_fingerprint="fp-1"))
    joined = grouper.assign(_signal("b", "something entirely different", client_fingerprint="fp-1"))
    assert joined.pattern_key == "a" and joined.method == MatchMethod.CLIENT_FINGERPRINT


def test_template_attaches_when_only_a_variable_word_differs() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "Invalid user alice from 10.0.0.1 on gateway port"))
    joined = grouper.assign(_signal("b", "Invalid user bob from 10.0.0.2 on gateway port"))
    assert joined.pattern_key == "a" and joined.method == MatchMethod.TEMPLATE
    assert 0.8 <= joined.similarity < 1.0
    assert joined.template == "Invalid user <*> from <*> on gateway port"


def test_middle_band_is_only_a_suggestion() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "cache miss for key in region"))
    near = grouper.assign(_signal("b", "cache hit for value in region"))
    assert near.created and near.pattern_key == "b"
    assert near.suggested_pattern_key == "a" and near.suggested_similarity is not None


def test_different_leading_word_never_attaches() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "Failed password for root from 10.0.0.1 port 22 ssh2"))
    other = grouper.assign(_signal("b", "Accepted password for root from 10.0.0.1 port 22 ssh2"))
    assert other.pattern_key == "b"


def test_merge_is_a_must_link_and_unlink_a_cannot_link() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "queue overflow in ingest"))
    grouper.assign(_signal("b", "backpressure stall in ingest stage"))
    grouper.merge("b", "a")
    again = grouper.assign(_signal("c", "backpressure stall in ingest stage"))
    assert again.pattern_key == "a"
    grouper.forbid(again.fingerprint, "a")
    apart = grouper.assign(_signal("d", "backpressure stall in ingest stage"))
    assert apart.pattern_key != "a" and apart.created


def test_grouping_is_a_pure_function_of_the_inputs() -> None:
    texts = [f"worker {i % 3} failed job {i} with code {i * 7}" for i in range(50)]
    texts += [f"slow query on table t{i} took {i}ms" for i in range(50)]

    def run() -> list[str]:
        grouper = Grouper()
        return [grouper.assign(_signal(str(i), text)).pattern_key for i, text in enumerate(texts)]

    assert run() == run()
    assert len(set(run())) == 2


def test_similar_ranks_earlier_issues_only() -> None:
    index = SimilarIndex()
    index.add("1", terms("NameNode crashes on startup with NullPointerException"))
    index.add("2", terms("Improve documentation of S3A committer"))
    index.add("3", terms("NameNode startup fails: NullPointerException in FSImage"))
    found = index.search(terms("NullPointerException when NameNode starts up"), before="3")
    assert [m.key for m in found][:1] == ["1"] and all(m.key != "3" for m in found)


def test_without_auto_link_a_fingerprint_match_is_only_a_suggestion_and_nothing_is_remembered() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "Timeout after 30s calling billing for order 1234"))

    held = grouper.assign(_signal("b", "Timeout after 12s calling billing for order 99"), Policy(auto_link=False))

    assert held.created and held.held and held.pattern_key == "b" and held.method == MatchMethod.NEW
    assert (held.suggested_pattern_key, held.suggested_similarity) == ("a", 1.0)
    later = grouper.assign(_signal("c", "Timeout after 5s calling billing for order 7"))
    assert later.pattern_key == "a" and later.method == MatchMethod.FINGERPRINT


def test_without_auto_link_a_template_match_is_a_suggestion_and_the_template_stays() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "Invalid user alice from 10.0.0.1 on gateway port"))

    held = grouper.assign(_signal("b", "Invalid user bob from 10.0.0.2 on gateway port"), Policy(auto_link=False))

    assert held.held and held.pattern_key == "b" and held.suggested_pattern_key == "a"
    assert held.suggested_similarity is not None and 0.8 <= held.suggested_similarity < 1.0
    joined = grouper.assign(_signal("c", "Invalid user alice from 10.0.0.3 on gateway port"))
    assert joined.pattern_key == "a" and joined.similarity == 1.0  # the template did not generalize


def test_a_client_fingerprint_links_even_without_auto_link() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "disk full on node", client_fingerprint="fp-1"))

    joined = grouper.assign(_signal("b", "something else", client_fingerprint="fp-1"), Policy(auto_link=False))

    assert joined.pattern_key == "a" and joined.method == MatchMethod.CLIENT_FINGERPRINT and not joined.held


def test_a_template_match_below_the_workspace_threshold_founds_its_own_pattern() -> None:
    grouper = Grouper()
    strict = Policy(min_similarity=0.9)
    grouper.assign(_signal("a", "Invalid user alice from 10.0.0.1 on gateway port"), strict)

    near = grouper.assign(_signal("b", "Invalid user bob from 10.0.0.2 on gateway port"), strict)
    twin = grouper.assign(_signal("c", "Invalid user bob from 10.0.0.9 on gateway port"), strict)

    assert near.created and not near.held and near.pattern_key == "b"
    assert near.suggested_pattern_key == "a" and near.suggested_similarity == 0.875
    assert twin.pattern_key == "b" and twin.method == MatchMethod.FINGERPRINT  # remembered like the middle band


def test_a_workspace_threshold_below_the_groupers_never_loosens_grouping() -> None:
    grouper = Grouper()
    grouper.assign(_signal("a", "cache miss for key in region"))

    near = grouper.assign(_signal("b", "cache hit for value in region"), Policy(min_similarity=0.1))

    assert near.created and near.pattern_key == "b" and near.suggested_pattern_key == "a"
