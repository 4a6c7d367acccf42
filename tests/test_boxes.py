import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fractals
from fractalscape.boundary import _edges
from fractalscape.boxes import (_boundary_boxes_kernel, _box_states, _power_sizes, boundary_box_counts,
                                box_counts)
from fractalscape.dimension import _boxcount, dimension
from helpers import raise_if_dask_computes
from test_boundary import chunkings


def cells_of(labels):
    """Reference: the boundary cell mask, as the counts were taken before the fused kernel."""
    return _edges(labels, cells=True)[:-1, :-1]


def random_map(shape, seed=0, p=0.5):
    return np.random.default_rng(seed).random(shape) < p


MAPS = {
    "random-257x263": random_map((257, 263)),
    "random-1000x37": random_map((1000, 37), seed=1, p=0.9),
    "random-5x5": random_map((5, 5), seed=2),
    "random-2x2": np.array([[True, False], [False, False]]),
    "random-37x41": random_map((37, 41), seed=3),
    "disk": fractals.disk(300, 111),
}


@pytest.mark.parametrize("name", MAPS)
def test_numpy_counts_equal_mask_counts(name):
    labels = MAPS[name]
    sizes, counts = boundary_box_counts(labels)
    expected_sizes, expected_counts = box_counts(cells_of(labels))
    np.testing.assert_array_equal(sizes, expected_sizes)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts.dtype == expected_counts.dtype == np.int64


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
@pytest.mark.parametrize(
    ("name", "chunks"),
    [("random-257x263", 64), ("random-257x263", (100, 77)), ("random-257x263", 300),
     ("random-257x263", -1), ("random-257x263", (256, 16)), ("random-1000x37", 300), ("random-1000x37", (128, 16)),
     ("random-37x41", 1), ("random-5x5", 1), ("random-2x2", 1), ("disk", (100, 77)),
     ("disk", ((256, 44), (16,) * 18 + (12,)))],
)
def test_dask_counts_equal_mask_counts(name, chunks, scheduler):
    labels = MAPS[name]
    lazy = da.from_array(labels, chunks=chunks)
    with dask.config.set(scheduler=scheduler):
        sizes, counts = boundary_box_counts(lazy)
    expected_sizes, expected_counts = box_counts(cells_of(labels))
    np.testing.assert_array_equal(sizes, expected_sizes)
    np.testing.assert_array_equal(counts, expected_counts)


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_dask_random_chunkings(data):
    labels = fractals.koch_snowflake(60, 4)[:, :47]
    chunks = (data.draw(chunkings(60)), data.draw(chunkings(47)))
    with dask.config.set(scheduler="synchronous"):
        _, counts = boundary_box_counts(da.from_array(labels, chunks=chunks))
    np.testing.assert_array_equal(counts, box_counts(cells_of(labels))[1])


@pytest.mark.parametrize("shape", [(33, 40), (2, 9), (64, 64)])
def test_kernel_state_maps_equal_the_pyramid(shape):
    labels = random_map(shape, seed=4)
    cells = cells_of(labels)
    sizes = _power_sizes(cells.shape)
    states = _box_states(cells, sizes)
    for level in range(1, len(sizes)):
        counts, state = _boundary_boxes_kernel(labels.view(np.uint8), level)
        np.testing.assert_array_equal(state, states[level])
        np.testing.assert_array_equal(counts, [(s != 0).sum() for s in states[:level + 1]])


def test_dask_counts_compute_once():
    lazy = da.from_array(fractals.disk(64, 20), chunks=(10, 13))
    with raise_if_dask_computes(max_computes=1):
        boundary_box_counts(lazy)


@pytest.mark.parametrize("chunks", [None, 64, (100, 77)])
@pytest.mark.parametrize("fit_range", [None, (2, 64)])
def test_dimension_is_bit_identical_to_the_mask_path(chunks, fit_range):
    labels = MAPS["disk"] ^ random_map((300, 300), seed=5, p=0.01)
    cells = cells_of(labels)
    expected = _boxcount(cells.shape, *box_counts(cells), fit_range)
    given_labels = labels if chunks is None else da.from_array(labels, chunks=chunks)
    assert dimension(given_labels, fit_range=fit_range) == expected


@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (1, 9)])
def test_maps_without_cells_count_nothing(shape):
    labels = np.zeros(shape, dtype=bool)
    for given_labels in (labels, da.from_array(labels, chunks=2)):
        sizes, counts = boundary_box_counts(given_labels)
        np.testing.assert_array_equal(sizes, box_counts(cells_of(labels))[0])
        assert not counts.any()


@pytest.mark.parametrize("chunks", [None, 7])
def test_single_class_still_raises(chunks):
    labels = np.ones((20, 30), dtype=bool)
    with pytest.raises(ValueError, match="labels hold a single class"):
        dimension(labels if chunks is None else da.from_array(labels, chunks=chunks))
