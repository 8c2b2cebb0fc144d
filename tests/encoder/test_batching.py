import itertools

from hypothesis import given
from hypothesis import strategies as st

from qzhou_eval.encoder.batching import (
    packed_batches,
    padded_tokens,
    padding_efficiency,
    token_budget_batches,
)
from qzhou_eval.encoder.embedder import chunk_bounds


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


@given(
    st.lists(st.integers(min_value=1, max_value=1024), max_size=300),
    st.integers(min_value=1, max_value=20000),
    st.integers(min_value=1, max_value=512),
    st.sampled_from([0.0, 0.03, 0.1, 0.5]),
)
def test_padding_limit_holds_for_every_batch(lengths, budget, max_bs, max_padding):
    batches = token_budget_batches(lengths, budget, max_bs, max_padding)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # still longest first
    for b in batches:
        assert len(b) <= max_bs
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget
        assert padding_efficiency(lengths, [b]) >= 1 - max_padding - 1e-12


def test_padding_limit_cuts_wide_batches_of_short_texts():
    lengths = [30 - i % 21 for i in range(512)]  # 512 short texts of lengths 10..30
    loose = token_budget_batches(lengths, 16384, 512)
    tight = token_budget_batches(lengths, 16384, 512, max_padding=0.03)
    assert len(loose) == 1 and padding_efficiency(lengths, loose) < 0.7
    assert padding_efficiency(lengths, tight) >= 0.97
    # no more batches than distinct lengths: texts of (nearly) equal length share a batch
    assert len(tight) <= 21


def test_many_texts_of_each_length_give_full_zero_padding_batches():
    lengths = [100 + i % 5 for i in range(5000)]
    batches = token_budget_batches(lengths, 16384, 512, max_padding=0.03)
    assert padding_efficiency(lengths, batches) > 0.99
    full = [b for b in batches if len(b) == 16384 // max(lengths[i] for i in b)]
    assert len(full) >= len(batches) - 5  # at most one partial batch per length


@given(
    st.lists(st.integers(min_value=1, max_value=1024), max_size=300),
    st.integers(min_value=1, max_value=20000),
    st.integers(min_value=1, max_value=512),
)
def test_packed_batches_bound_real_tokens(lengths, budget, max_bs):
    batches = packed_batches(lengths, budget, max_bs)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= max_bs
        assert len(b) == 1 or sum(lengths[i] for i in b) <= budget


def test_padded_tokens_counts_the_longest_input_per_batch():
    assert padded_tokens([3, 5, 2], [[1, 0], [2]]) == 2 * 5 + 2
    assert padding_efficiency([3, 5, 2], [[1, 0], [2]]) == (3 + 5 + 2) / 12


@given(n=st.integers(0, 5000), first=st.integers(1, 300), largest=st.integers(1, 2000))
def test_a_call_starts_with_a_small_chunk_and_doubles(n, first, largest):
    bounds = chunk_bounds(n, first, largest)
    if not n:
        assert bounds == []
        return
    assert [b[0] for b in bounds] == [0] + [b[1] for b in bounds[:-1]]  # back to back
    assert bounds[-1][1] == n
    sizes = [stop - start for start, stop in bounds]
    expected = min(first, largest)
    for size in sizes[:-1]:
        assert size == expected
        expected = min(largest, 2 * expected)
    assert 0 < sizes[-1] <= expected


@given(
    n=st.integers(0, 3000),
    first=st.integers(1, 300),
    largest=st.integers(1, 2000),
    breaks=st.lists(st.integers(-5, 3005), max_size=6),
)
def test_each_call_between_breaks_is_chunked_as_if_it_came_alone(n, first, largest, breaks):
    # the sequential runner chunks each of mteb's calls from its start; the look-ahead's chunks
    # of several calls must be the same, or on a GPU the same input gets other bits
    bounds = chunk_bounds(n, first, largest, breaks)
    starts = [0] + [stop for _, stop in bounds]
    assert [start for start, _ in bounds] == starts[:-1] and starts[-1] == n  # back to back
    cuts = [0, *sorted({b for b in breaks if 0 < b < n}), n]
    alone = [
        (begin + start, begin + stop)
        for begin, end in itertools.pairwise(cuts)
        for start, stop in chunk_bounds(end - begin, first, largest)
    ]
    assert bounds == alone
