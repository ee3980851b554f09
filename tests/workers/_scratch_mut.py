import pytest
from workers import subscriptions
from tests.workers.test_subscriptions import *  # noqa
from tests.workers.test_subscriptions import test_matching_reads_only_the_events_own_tokens_not_every_subscription as base


def scanning_match(self, events):
    subs = self.store.all()
    out = []
    for event in events:
        tokens = subscriptions.event_tokens(event)
        out.append([s for s in subs if s.wants(event) and subscriptions.term_matches(
            [subscriptions.forms(subscriptions.Term.parse(t), self.expansions) for t in s.terms], tokens)])
    return out


def test_mutant(store, recorded, monkeypatch):
    monkeypatch.setattr(subscriptions.Matcher, "match", scanning_match)
    base(store, recorded)

def test_real(store, recorded):
    base(store, recorded)
    from tests.workers.test_subscriptions import RecordingConnection
    print(RecordingConnection.sent)
