"""The throughput check's arithmetic: FLOPs and the suggested budget."""

from qzhou_eval.check.speed import flops, suggest_budget


def test_flops_formula():
    assert flops([10, 20], params=100, layers=2, hidden=8) == 2 * 100 * 30 + 4 * 2 * 8 * 500


def test_suggested_budget_reaches_the_memory_target_on_the_line():
    gib = 2**30
    # 20 GiB of weights, 1 GiB per 16k tokens; 85% of 80 GiB leaves 48 GiB: 786k tokens.
    points = [(16384, 21 * gib), (32768, 22 * gib)]
    got = suggest_budget(points, total=80 * gib, cap=10**9, floor=1024)
    assert got == (int((0.85 * 80 - 20) * 16384) // 1024) * 1024
    assert suggest_budget(points, total=80 * gib, cap=65536, floor=1024) == 65536
    assert suggest_budget([(1, 5), (2, 5)], total=10, cap=100, floor=1) is None
