"""library_moves.in_order: each new place freed before a file moves into it."""

from __future__ import annotations

from media_pipeline.library_moves import Move, in_order


def test_a_chain_moves_its_last_file_first():
    moves = [Move("/s/e01", "/s/e02"), Move("/s/e02", "/s/e03")]
    assert in_order(moves) == [Move("/s/e02", "/s/e03"), Move("/s/e01", "/s/e02")]


def test_a_circle_is_broken_by_a_hidden_name_in_the_files_own_folder():
    moves = [Move("/s/e01", "/s/e02"), Move("/s/e02", "/s/e01")]
    assert in_order(moves) == [
        Move("/s/e01", "/s/.mp-move.e01"),
        Move("/s/e02", "/s/e01"),
        Move("/s/.mp-move.e01", "/s/e02"),
    ]
