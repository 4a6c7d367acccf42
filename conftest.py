"""Test tiers: ``pytest`` runs the fast tier; ``pytest -m slow`` the rest (CI runs both).

The slow tier holds what costs more than a few seconds on 2 cores: the
browser, dask.distributed clusters, SIGKILL and resume runs, long CLI runs,
the benchmarks' smoke runs, and network kernels beyond the ones the fast
tier compiles (each new network shape compiles for 14-40 s).
"""

import pytest

# Doctests run over the package; the module that runs the CLI on import is not one.
collect_ignore = ["fractalscape/__main__.py"]

#: Test modules whose every test belongs to the slow tier: clusters, benchmarks, and the
#: network and optimizer kernels (one compilation per shape and rule; the fast tier keeps
#: the networks of the doctests and of the error-message tests).
SLOW_MODULES = {"test_distributed.py", "test_benchmarks.py", "test_sd_tiles.py", "test_network.py",
                "test_network_options.py", "test_network_maps.py", "test_optimizers.py"}
#: Single slow tests (node ids without parameters): 7-90 s each on 2 shared cores, mostly whole CLI processes.
SLOW_TESTS = {
    "tests/test_audit.py::test_network_maps_get_ulp_and_precision_only",
    "tests/test_jaxrandom.py::test_rng_changes_only_the_draws",
    "tests/test_cli.py::test_audit_command",
    "tests/test_cli.py::test_zoom_command_and_pooled_dimension",
    "tests/test_cli.py::test_dimension_and_render_refuse_an_incomplete_map",
    "tests/test_cli.py::test_dimension_uncertainty_from_a_config",
    "tests/test_kernels_fast.py::test_fast_lane_loop_is_vectorized",
    "tests/test_kernels_fast.py::test_cycle_exit_is_bit_identical_to_running_every_step",
    "tests/test_hardening.py::test_a_second_map_on_the_same_out_is_refused_or_waits",
    "tests/test_hardening.py::test_dimension_plot_is_drawn_atomically_and_a_bad_path_is_refused_first",
    "tests/test_hardening.py::test_steps_per_second_counts_only_the_blocks_of_this_run",
    "tests/test_hardening.py::test_setting_num_below_the_chunk_shrinks_the_chunk",
    "tests/test_hardening.py::test_render_writes_the_png_atomically",
    "tests/test_cli.py::test_render_draws_an_ensemble_p_map",
    "tests/test_cli.py::test_ensemble_map_end_to_end",
    "tests/test_cli.py::test_output_holding_a_different_map_is_refused",
    "tests/test_cli.py::test_sweep_command_writes_rows_and_refuses_unknown_keys",
    "tests/test_cli.py::test_map_2d_preset_with_overrides",
    "tests/test_jaxrandom.py::test_normal_uniform_randint",
    "tests/test_docs.py::test_compare_estimators_example_runs_at_toy_size",
    "tests/test_kernelcache.py::test_maps_match_a_process_without_the_cache",
    "tests/test_render.py::test_render_cli_writes_a_png_with_both_classes",
    "tests/test_render.py::test_a_stored_map_renders_from_the_coarsest_level_that_fills_the_picture",
    # the two slowest of the fast tier on 2026-12-02 (41 s: a network kernel's compilation; 17 s)
    "tests/test_audit.py::test_sohl_dickstein_label_is_the_one_compared",
    "tests/test_render.py::test_render_cli_marks_upsampled_windows_and_recomputes_them",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # before -m deselects: browser tests, the slow modules and the slow tests are slow
    for item in items:
        if (item.get_closest_marker("browser") or item.path.name in SLOW_MODULES
                or item.nodeid.split("[")[0] in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
