"""library_moves.in_order: each new place freed before a file moves into it."""

from __future__ import annotations

from media_pipeline.library.moves import Move, in_order, move_problem


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


def test_two_files_to_one_place_are_refused_naming_both(tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    moves = [Move(str(tmp_path / "a"), str(tmp_path / "c")),
             Move(str(tmp_path / "b"), str(tmp_path / "c"))]  # fmt: skip
    problem = move_problem(str(tmp_path), moves)
    assert problem == (
        f"{tmp_path / 'a'} and {tmp_path / 'b'} would both be moved to {tmp_path / 'c'}; "
        "nothing moved"
    )
