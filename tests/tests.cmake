spaces_script_test(format 60 ${CMAKE_SOURCE_DIR}/ci/format.sh check)
spaces_script_test(ci_pg_cluster 120 ${CMAKE_SOURCE_DIR}/tests/ci/test_pg_cluster.sh)
spaces_script_test(fuzz_ws_frame 120 ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh ws_frame 15 ${CMAKE_BINARY_DIR})
spaces_script_test(fuzz_eio_payload 120 ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh eio_payload 15 ${CMAKE_BINARY_DIR})
