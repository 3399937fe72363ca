spaces_script_test(format 60 ${CMAKE_SOURCE_DIR}/ci/format.sh check)
spaces_script_test(ci_pg_cluster 120 ${CMAKE_SOURCE_DIR}/tests/ci/test_pg_cluster.sh)
