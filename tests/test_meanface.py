"""Mean face I/O, neighbour tables and reverse index against the spec (section 6, App. A)."""
import pathlib

import numpy as np
import pytest

from pipnet_jax.meanface import (compute_meanface, neighbor_indices, read_meanface,
                                 reverse_index, write_meanface)

DATA = pathlib.Path(__file__).parent / "data"

# Spec 6.3: (max_len, min reverse-list length) for C = 10.
EXPECTED_LENGTHS = {
    "data_300W": (22, 4),
    # data_300W_CELEBA's file is byte-identical to this one (spec 1.2) and not in shared data
    "data_300W_COFW_WFLW": (22, 4),
    "WFLW": (17, 3),
    "COFW": (19, 6),
    "AFLW": (18, 3),
    "LaPa": (20, 5),
}

# Spec 6.3: reverse-list length per landmark (how many (i, j) vote for it).
REVERSE_LIST_LENGTHS = {
    "data_300W": "5 4 4 4 4 4 5 4 4 4 5 4 4 4 4 4 5 8 9 10 10 11 11 10 10 9 8 12 9 7 7 8 8 9 8 "
                 "9 12 12 14 11 14 13 11 13 12 12 13 14 8 12 16 22 15 11 8 13 14 13 15 13 9 "
                 "16 21 15 9 18 18 18",
    "WFLW": "6 7 6 7 8 8 8 7 7 8 9 9 7 6 6 6 6 6 6 6 7 8 8 8 7 8 8 8 8 7 6 7 6 7 6 10 8 5 8 "
            "12 16 10 5 8 8 8 7 10 16 11 8 8 3 7 7 8 9 10 10 8 13 14 17 15 11 12 9 15 11 14 "
            "17 14 13 15 9 13 13 9 17 17 16 9 13 13 13 13 14 12 14 11 17 13 14 13 16 13 15 15",
    "COFW": "7 7 13 14 8 8 8 8 8 8 11 12 8 10 8 10 9 9 18 18 19 10 8 7 10 10 10 8 6",
    "AFLW": "5 7 12 12 7 5 9 16 18 18 16 7 11 15 11 6 6 6 3",
}


def meanface_path(shared_data, name):
    path = shared_data / "pipnet_repo_assets" / "data" / name / "meanface.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def read_table(path):
    """Appendix A format: 'i: n0 n1 ... n9' per line."""
    rows = []
    for k, line in enumerate(path.read_text().splitlines()):
        index, values = line.split(":")
        assert int(index) == k
        rows.append([int(v) for v in values.split()])
    return np.array(rows)


def reverse_lists(neighbors):
    """Unpadded (i, j) lists per landmark, by brute force."""
    n = neighbors.shape[0]
    return [[(i, j) for i in range(n) for j in range(neighbors.shape[1])
             if neighbors[i, j] == t] for t in range(n)]


@pytest.mark.parametrize("name,table", [("data_300W", "neighbors_300w.txt"),
                                        ("WFLW", "neighbors_wflw.txt")])
def test_neighbor_tables_match_appendix_a(shared_data, name, table):
    neighbors = neighbor_indices(read_meanface(meanface_path(shared_data, name)), 10)
    assert neighbors.dtype == np.int32
    np.testing.assert_array_equal(neighbors, read_table(DATA / table))


@pytest.mark.parametrize("name", sorted(EXPECTED_LENGTHS))
def test_reverse_index_lengths(shared_data, name):
    meanface = read_meanface(meanface_path(shared_data, name))
    neighbors = neighbor_indices(meanface, 10)
    ri1, ri2, max_len = reverse_index(neighbors)
    n = meanface.shape[0]
    assert (max_len, min(len(p) for p in reverse_lists(neighbors))) == EXPECTED_LENGTHS[name]
    assert ri1.shape == ri2.shape == (n * max_len,)
    # Every padded entry is a real vote for its landmark.
    np.testing.assert_array_equal(neighbors[ri1, ri2], np.repeat(np.arange(n), max_len))
    if name in REVERSE_LIST_LENGTHS:
        lengths = [len(p) for p in reverse_lists(neighbors)]
        assert lengths == [int(v) for v in REVERSE_LIST_LENGTHS[name].split()]


def test_reverse_index_worked_examples(shared_data):
    """Spec 6.3 worked examples: landmark 0 of 300W and of WFLW, cyclically padded."""
    for name, pairs in [("data_300W", [(1, 0), (2, 3), (17, 1), (18, 7), (36, 8)]),
                        ("WFLW", [(1, 0), (2, 2), (3, 4), (4, 6), (5, 8), (33, 4)])]:
        neighbors = neighbor_indices(read_meanface(meanface_path(shared_data, name)), 10)
        ri1, ri2, max_len = reverse_index(neighbors)
        expected = [pairs[k % len(pairs)] for k in range(max_len)]
        assert list(zip(ri1[:max_len].tolist(), ri2[:max_len].tolist())) == expected


def test_reverse_index_small_table():
    neighbors = np.array([[1, 2], [2, 0], [0, 1]])
    ri1, ri2, max_len = reverse_index(neighbors)
    assert max_len == 2
    # t=0: (1,1),(2,0); t=1: (0,0),(2,1); t=2: (0,1),(1,0)
    assert ri1.tolist() == [1, 2, 0, 2, 0, 1]
    assert ri2.tolist() == [1, 0, 0, 1, 1, 0]


def test_reverse_index_cyclic_padding():
    # Landmark 0 is voted for by 3 pairs, landmark 1 by 1, landmark 2 by 2.
    neighbors = np.array([[1, 2], [0, 2], [0, 0]])
    ri1, ri2, max_len = reverse_index(neighbors)
    assert max_len == 3
    assert list(zip(ri1.tolist(), ri2.tolist())) == [
        (1, 0), (2, 0), (2, 1),
        (0, 0), (0, 0), (0, 0),
        (0, 1), (1, 1), (0, 1)]


def test_reverse_index_rejects_landmark_without_votes():
    with pytest.raises(ValueError, match=r"landmark\(s\) \[2\]"):
        reverse_index(np.array([[1], [0], [0]]))


def test_neighbor_indices_drops_self_even_with_duplicate_point():
    # Points 0 and 1 coincide: for landmark 1, the stable order puts 0 first at distance 0;
    # landmark 1 itself must still be the one dropped.
    meanface = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    neighbors = neighbor_indices(meanface, 2)
    np.testing.assert_array_equal(neighbors, [[1, 2], [0, 2], [0, 1], [2, 0]])


def test_neighbor_indices_ties_by_index():
    # Landmark 0 is equidistant from 1..4: ascending index breaks the tie.
    meanface = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(neighbor_indices(meanface, 3)[0], [1, 2, 3])


@pytest.mark.parametrize("num_neighbors", [0, 4, 5])
def test_neighbor_indices_rejects_bad_count(num_neighbors):
    with pytest.raises(ValueError, match="num_neighbors"):
        neighbor_indices(np.random.default_rng(0).random((4, 2)), num_neighbors)


def test_compute_meanface():
    landmarks = np.random.default_rng(0).random((5, 7, 2)).astype(np.float32)
    meanface = compute_meanface(landmarks)
    assert meanface.shape == (7, 2) and meanface.dtype == np.float64
    np.testing.assert_allclose(meanface, landmarks.astype(np.float64).mean(axis=0), rtol=0,
                               atol=1e-15)
    with pytest.raises(ValueError):
        compute_meanface(np.zeros((5, 7)))


def test_write_read_round_trip(tmp_path):
    meanface = np.random.default_rng(1).random((98, 2))
    path = tmp_path / "meanface.txt"
    write_meanface(path, meanface)
    text = path.read_text()
    assert "\n" not in text and len(text.split(" ")) == 196
    np.testing.assert_array_equal(read_meanface(path), meanface)
    assert [p.name for p in tmp_path.iterdir()] == ["meanface.txt"]  # no temp file left


@pytest.mark.parametrize("name", ["data_300W", "WFLW", "COFW", "AFLW", "LaPa"])
def test_real_file_round_trip_is_byte_identical(shared_data, name, tmp_path):
    source = meanface_path(shared_data, name)
    write_meanface(tmp_path / "meanface.txt", read_meanface(source))
    assert (tmp_path / "meanface.txt").read_bytes() == source.read_bytes()


def test_read_accepts_trailing_newline(tmp_path):
    path = tmp_path / "meanface.txt"
    path.write_text("0.25 0.5 0.75 1.0\n")
    np.testing.assert_array_equal(read_meanface(path), [[0.25, 0.5], [0.75, 1.0]])


@pytest.mark.parametrize("text,message", [("0.1 0.2 0.3", "even"),
                                          ("", "even"),
                                          ("0.1 abc 0.3 0.4", "'abc'")])
def test_read_rejects_bad_files(tmp_path, text, message):
    path = tmp_path / "bad_meanface.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_meanface(path)
    assert "bad_meanface.txt" in str(error.value)
