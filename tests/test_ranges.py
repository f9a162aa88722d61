"""The plan of a download over several connections: who fetches which bytes (no I/O)."""

from downloads.ranges import MAX_PIECE, Plan

MB = 1 << 20


def test_work_is_handed_out_in_pieces_in_file_order():
    plan = Plan(10 * MB, piece=4 * MB, min_piece=MB)
    taken = [plan.take() for _ in range(3)]
    assert [(s.pos, s.end) for s in taken] == [(0, 4 * MB), (4 * MB, 8 * MB), (8 * MB, 10 * MB)]
    assert plan.waiting == []


def test_a_free_connection_takes_the_second_half_of_the_largest_range_left():
    plan = Plan(16 * MB, piece=8 * MB, min_piece=MB)
    slow, fast = plan.take(), plan.take()
    plan.wrote(fast, 8 * MB)
    plan.release(fast)
    plan.wrote(slow, 2 * MB)
    stolen = plan.take()
    assert (stolen.pos, stolen.end) == (5 * MB, 8 * MB)
    assert (slow.pos, slow.end) == (2 * MB, 5 * MB)


def test_ranges_smaller_than_two_pieces_minimum_are_not_split():
    plan = Plan(3 * MB, piece=3 * MB, min_piece=2 * MB)
    plan.take()
    assert plan.take() is None


def test_done_ranges_merge_and_the_prefix_follows_them():
    plan = Plan(12 * MB, piece=4 * MB, min_piece=MB)
    first, second, third = plan.take(), plan.take(), plan.take()
    plan.wrote(second, 4 * MB)
    plan.wrote(third, MB)
    assert plan.prefix == 0
    assert plan.done() == [(4 * MB, 9 * MB)]
    plan.wrote(first, 4 * MB)
    assert plan.prefix == 9 * MB
    assert plan.done() == [(0, 9 * MB)]
    assert plan.done_bytes == 9 * MB


def test_a_released_range_waits_in_file_order_and_is_taken_first():
    plan = Plan(12 * MB, piece=4 * MB, min_piece=MB)
    first, second = plan.take(), plan.take()
    plan.wrote(first, MB)
    plan.release(first)
    plan.release(second)
    assert plan.waiting == [(MB, 4 * MB), (4 * MB, 8 * MB), (8 * MB, 12 * MB)]
    again = plan.take()
    assert (again.pos, again.end) == (MB, 4 * MB)


def test_a_plan_resumed_from_done_ranges_hands_out_only_the_gaps():
    plan = Plan(10 * MB, [(0, 2 * MB), (6 * MB, 7 * MB)], piece=8 * MB, min_piece=MB)
    assert plan.done_bytes == 3 * MB
    assert plan.prefix == 2 * MB
    assert plan.waiting == [(2 * MB, 6 * MB), (7 * MB, 10 * MB)]
    plan.wrote(plan.take(), 4 * MB)
    plan.wrote(plan.take(), 3 * MB)
    assert plan.complete
    assert plan.done() == [(0, 10 * MB)]


def test_pieces_are_about_an_eighth_of_each_connections_share_within_bounds():
    assert Plan.piece_for(1 << 30, 8, 4 * MB) == 16 * MB
    assert Plan.piece_for(40 << 30, 8, 4 * MB) == MAX_PIECE
    assert Plan.piece_for(40 * MB, 8, 4 * MB) == 4 * MB
