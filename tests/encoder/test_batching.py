from hypothesis import given
from hypothesis import strategies as st

from qzhou_eval.encoder.batching import token_budget_batches


def test_sorted_longest_first_and_within_budget():
    lengths = [5, 100, 7, 50, 3, 100]
    batches = token_budget_batches(lengths, tokens_per_batch=200, max_batch_size=64)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 200


def test_short_texts_fill_a_batch_long_ones_get_small_batches():
    lengths = [1000] * 4 + [10] * 400
    batches = token_budget_batches(lengths, tokens_per_batch=2000, max_batch_size=128)
    assert [len(b) for b in batches[:2]] == [2, 2]
    assert max(len(b) for b in batches) == 128


def test_oversized_input_gets_its_own_batch():
    assert token_budget_batches([5000, 10], 1000, 8) == [[0], [1]]


@given(
    st.lists(st.integers(min_value=1, max_value=600), max_size=200),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=1, max_value=64),
)
def test_every_index_once_and_budget_respected(lengths, budget, max_bs):
    batches = token_budget_batches(lengths, budget, max_bs)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= max_bs
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
